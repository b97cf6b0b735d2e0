"""From a composed Hydra config to a running Lightning fit: the objects `train.py` builds, one function each."""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from minimath import log
from minimath.config import ALL_STAGES, step_batch
from minimath.data.prepare import prepare
from minimath.errors import Interrupted, UserError
from minimath.hardware import ProbeShape, resolve, set_threads
from minimath.io import atomic_write_json
from minimath.runs import (
    FINAL,
    LAST,
    Fingerprint,
    auto_init_run,
    check_fingerprint,
    checkpoint_dir,
    command_line_overrides,
    mark_final,
    stage_config,
    stage_lock,
)
from minimath.start import StageStart, StartKind
from minimath.tokenizer import CompactTokenizer, TokenizerLike, get_tokenizer, padded_vocab_size, tokenizer_from_state

if TYPE_CHECKING:  # torch and Lightning are imported where a run builds with them: `--help` and errors stay fast
    import lightning as L

    from minimath.checkpoint import AtomicCheckpointIO
    from minimath.data.datamodule import MixtureDataModule
    from minimath.lit_module import MiniMathModule
    from minimath.model import ModelConfig
    from minimath.schedules import Schedule


def world_size(hardware: DictConfig) -> int:
    return int(hardware.devices) * int(hardware.num_nodes)


def accumulation_steps(tokens_per_step: int, micro_batch: int, seq_len: int, n_ranks: int) -> int:
    """Micro-batches per optimizer step so that one step sees exactly `tokens_per_step` tokens."""
    per_micro_step = micro_batch * seq_len * n_ranks
    if tokens_per_step <= 0 or tokens_per_step % per_micro_step:
        raise UserError(
            f"batch of {tokens_per_step} tokens/step is not a multiple of micro_batch×seq_len×world_size = "
            f"{micro_batch}×{seq_len}×{n_ranks} = {per_micro_step}: pick another batch= or hardware.micro_batch"
        )
    return tokens_per_step // per_micro_step


def micro_batch_size(cfg: DictConfig) -> int:
    """`hardware.micro_batch`: a number of sequences, or `auto` = the largest number of sequences, at most
    `hardware.max_micro_batch`, that divides each rank's share of the step (a 2,560-token step of 128-token
    sequences on one CPU: 20; a 256-token step: 2), so every stage of a curriculum runs its biggest micro-batch."""
    setting = cfg.hardware.micro_batch
    if str(setting) != "auto":
        return int(setting)
    tokens_per_step = step_batch(cfg).tokens_per_step
    sequences, rest = divmod(tokens_per_step, int(cfg.model.max_seq_len) * world_size(cfg.hardware))
    if rest or sequences < 1:
        raise UserError(
            f"batch of {tokens_per_step} tokens/step is not a whole number of "
            f"{cfg.model.max_seq_len}-token sequences per rank: pick another batch="
        )
    largest = int(cfg.hardware.get("max_micro_batch", sequences))
    return max(m for m in range(1, min(sequences, largest) + 1) if sequences % m == 0)


def used_token_ids(manifest: dict) -> set[int]:
    """Every base-vocabulary id that occurs in the prepared data (all sources, so all stages share one vocabulary)."""
    return {i for entry in manifest["sources"].values() for i in entry["used_ids"]}


def build_tokenizer(model_cfg: DictConfig, manifest: dict | None) -> TokenizerLike:
    """The model's vocabulary; a compact one keeps the ids the prepared data uses."""
    base = get_tokenizer(str(model_cfg.tokenizer))
    if not model_cfg.compact_vocab:
        return base
    if manifest is None:
        raise UserError("a compact vocabulary needs prepared data (the manifest lists the ids it uses)")
    if manifest.get("tokenizer") != base.name:
        raise UserError(
            f"the prepared data was tokenized with {manifest.get('tokenizer')}, the model uses "
            f"{base.name}: set data.tokenizer to the model's tokenizer and prepare again"
        )
    return CompactTokenizer.keeping(base, used_token_ids(manifest))


def start_tokenizer(cfg: DictConfig, manifest: dict, start: StageStart) -> TokenizerLike:
    """The run's vocabulary. A stage that starts from a checkpoint (init, resume, branch) keeps that checkpoint's
    compact vocabulary, because its embedding rows mean those ids: a stage-4 run on data with new text (synthesized
    problems) starts from the default stage-3 model as it is, and tokens outside its vocabulary read as the unknown
    id, counted here. With `init_vocab=extend` an init_from stage appends them to the inherited vocabulary instead
    (`extend_start_vocabulary` gives them embedding rows)."""
    built = build_tokenizer(cfg.model, manifest)
    inherited = inherited_vocabulary(start)
    if not isinstance(built, CompactTokenizer) or inherited is None:
        return built
    if np.array_equal(inherited.kept_ids, built.kept_ids):
        return built
    outside = used_token_ids(manifest) - set(inherited.kept_ids.tolist())
    mode = cfg.get("init_vocab")
    if outside and mode == "extend" and start.kind is StartKind.INIT:
        log.info(
            f"  vocabulary: {start.path}'s ({inherited.vocab_size:,} ids) extended by the {len(outside):,} token "
            f"ids of the prepared data outside it (init_vocab=extend; their rows start at the mean embedding)"
        )
        return CompactTokenizer.extending(inherited, outside)
    log.info(
        f"  vocabulary: {start.path}'s ({inherited.vocab_size:,} ids); {len(outside):,} token ids of the "
        f"prepared data are outside it and read as its unknown id"
        + (" (init_vocab=extend adds them when a stage starts with init_from)" if outside and mode is None else "")
    )
    return inherited


def inherited_vocabulary(start: StageStart) -> CompactTokenizer | None:
    """The compact vocabulary of the checkpoint a stage starts from (None: no checkpoint, or a full vocabulary)."""
    state = start.checkpoint["hyper_parameters"].get("tokenizer") if start.checkpoint is not None else None
    if not isinstance(state, dict) or "kept_ids" not in state:
        return None
    return tokenizer_from_state(state)


def check_init_vocab(cfg: DictConfig) -> None:
    """`init_vocab`'s value, checked before any work."""
    mode = cfg.get("init_vocab")
    if mode not in (None, "extend"):
        raise UserError(f"init_vocab={mode} is not a choice: null (keep the checkpoint's vocabulary) or extend")
    if mode == "extend" and cfg.init_optimizer:
        raise UserError(
            "init_vocab=extend changes the embedding's shape, so its AdamW moments cannot carry: set init_optimizer=false"
        )


def extend_start_vocabulary(start: StageStart, tokenizer: TokenizerLike, model_config: ModelConfig) -> None:
    """Give an `init_vocab=extend` start's checkpoint the rows of its extended vocabulary, in place, before the
    weights load: inherited ids keep their rows, the new ids start at the mean of the inherited rows (what
    transformers' `resize_token_embeddings` does by default, so the extended model's output distribution starts
    close to the old one's), the unknown id keeps its row at its new place, padding rows are zero. The embedding is
    tied to the output layer, so this is the only matrix that changes."""
    inherited = inherited_vocabulary(start) if start.kind is StartKind.INIT else None
    if inherited is None or not isinstance(tokenizer, CompactTokenizer) or not tokenizer.extends(inherited):
        return
    key = "model.tok_embeddings.weight"
    old = start.checkpoint["state_dict"][key]
    n_old, n_new = len(inherited.kept_ids), len(tokenizer.kept_ids)
    rows = old.new_zeros(model_config.vocab_size, old.shape[1])
    rows[:n_old] = old[:n_old]
    rows[n_old:n_new] = old[:n_old].mean(dim=0)
    rows[tokenizer.unk_id] = old[inherited.unk_id]
    start.checkpoint["state_dict"][key] = rows
    start.checkpoint["hyper_parameters"]["model"]["vocab_size"] = model_config.vocab_size


def build_datamodule(cfg: DictConfig, manifest: dict, tokenizer: TokenizerLike) -> MixtureDataModule:
    from minimath.data.datamodule import MixtureDataModule
    from minimath.data.mixture import StagePlan

    plan = StagePlan(
        directory=str(cfg.data.dir),
        sources=manifest["sources"],
        stages=OmegaConf.to_container(cfg.data.stages, resolve=True),
        stage=str(cfg.stage),
        seq_len=int(cfg.model.max_seq_len),
        seed=int(cfg.seed),
    )
    plan.build()  # checks every source of the stage yields sequences, before any model is built
    remap = tokenizer.from_base if isinstance(tokenizer, CompactTokenizer) else None
    return MixtureDataModule(
        plan,
        micro_batch=micro_batch_size(cfg),
        num_workers=int(cfg.hardware.num_workers),
        remap=remap,
        eot_id=tokenizer.eot_id,
    )


def stage_budget(cfg: DictConfig) -> int:
    """Tokens the data config gives the selected stage: tokens per epoch × epochs."""
    spec = cfg.data.stages.get(str(cfg.stage))
    if spec is None:
        raise UserError(
            f"stage {cfg.stage} is not defined in data={cfg.data.name} (it has {', '.join(map(str, cfg.data.stages))})"
        )
    return token_count(spec.tokens, f"data.stages.{cfg.stage}.tokens") * int(spec.epochs)


def token_count(value, key: str) -> int:
    """A positive whole number of tokens (`20480`, `2e4`, `100_000`); anything else is an error naming `key`."""
    try:
        tokens = float(str(value).replace("_", ""))
    except ValueError:
        tokens = math.nan
    if not (tokens >= 1 and tokens == int(tokens)):
        raise UserError(f"{key}={value} is not a positive whole number of tokens (e.g. {key}=20480)")
    return int(tokens)


def training_tokens(cfg: DictConfig) -> int:
    """A decay branch's scheduler.decay_tokens, else train.max_tokens, else the stage's budget from the data config."""
    if cfg.branch_from:
        if not cfg.scheduler.get("decay_tokens"):
            raise UserError("branch_from trains a decay alone: set its length, scheduler=wsd scheduler.decay_tokens=N")
        return token_count(cfg.scheduler.decay_tokens, "scheduler.decay_tokens")
    if cfg.train.max_tokens is not None:
        return token_count(cfg.train.max_tokens, "train.max_tokens")
    return stage_budget(cfg)


def build_model_config(model_cfg: DictConfig, tokenizer: TokenizerLike) -> ModelConfig:
    from minimath.model import ModelConfig

    rows = model_cfg.vocab_size
    if rows is None:
        rows = padded_vocab_size(tokenizer.vocab_size, int(model_cfg.vocab_pad_multiple))
    if rows < tokenizer.vocab_size:
        raise UserError(
            f"model.vocab_size={rows} is smaller than the {tokenizer.name} vocabulary "
            f"({tokenizer.vocab_size}): set model.vocab_size=null to derive it"
        )
    try:
        return ModelConfig.from_preset(model_cfg, vocab_size=int(rows))
    except ValueError as err:
        raise UserError(f"model config: {err}") from None


def report_params(model_config: ModelConfig) -> dict[str, int]:
    """Instantiate on the meta device (no memory) and count; the closed form must agree."""
    import torch

    from minimath.model import Transformer, count_params

    with torch.device("meta"):
        model = Transformer(model_config)
    counted = sum(p.numel() for p in model.parameters())
    expected = count_params(model_config)
    assert counted == expected["total"], (counted, expected)
    return expected


TRAINER_ARGS_FROM_CONFIG = {
    "accelerator": "hardware.accelerator",
    "devices": "hardware.devices",
    "num_nodes": "hardware.num_nodes",
    "strategy": "hardware.strategy",
    "precision": "hardware.precision",
    "max_steps": "train.max_tokens (or the data config)",
    "accumulate_grad_batches": "batch= and hardware.micro_batch",
    "logger": "logger=",
    "callbacks": "callbacks= (and checkpoint:)",
    "default_root_dir": "paths.output_dir",
    "plugins": "(the run's checkpoint I/O)",
}


def trainer_arguments(cfg: DictConfig, derived: dict) -> dict:
    """One dict of `L.Trainer` arguments: what the run derives (`derived`, keys of TRAINER_ARGS_FROM_CONFIG) and the
    free `trainer:` group; a `trainer.` key the run sets itself is a one-line error naming the setting to use."""
    free = OmegaConf.to_container(cfg.trainer, resolve=True)
    clash = sorted(set(free) & set(TRAINER_ARGS_FROM_CONFIG))
    if clash:
        raise UserError(f"trainer.{clash[0]} is set by the run: use {TRAINER_ARGS_FROM_CONFIG[clash[0]]} instead")
    return {**derived, **free}


def build_callbacks(cfg: DictConfig, source_names: list[str]) -> list[L.Callback]:
    """The two callbacks correctness depends on, always: step checkpoints with the graceful interrupt (`checkpoint:`)
    and the data position every checkpoint carries; then `conf/callbacks`, each built from its config (a
    `source_names:` key is filled with the stage's sources)."""
    from minimath.callbacks import Checkpointing
    from minimath.data.datamodule import DataPositionTracker

    built = [Checkpointing(dirpath=str(checkpoint_dir(cfg.paths.output_dir)), **cfg.checkpoint), DataPositionTracker()]
    for c in cfg.callbacks.values():
        if c is None:  # switched off (callbacks=quiet: heldout_eval: null)
            continue
        derived = {"source_names": list(source_names)} if "source_names" in c else {}
        built.append(hydra.utils.instantiate(c, **derived))
    return built


def build_trainer(
    cfg: DictConfig,
    precision: str,
    accumulate: int,
    max_steps: int,
    source_names: list[str],
    checkpoint_io: AtomicCheckpointIO,
) -> L.Trainer:
    import lightning as L

    hw = cfg.hardware
    return L.Trainer(
        **trainer_arguments(
            cfg,
            dict(
                accelerator=hw.accelerator,
                devices=hw.devices,
                num_nodes=hw.num_nodes,
                strategy=hydra.utils.instantiate(hw.strategy) if OmegaConf.is_dict(hw.strategy) else hw.strategy,
                precision=precision,
                max_steps=max_steps,
                accumulate_grad_batches=accumulate,
                logger=[hydra.utils.instantiate(cfg.logger)],
                callbacks=build_callbacks(cfg, source_names),
                default_root_dir=cfg.paths.output_dir,
                plugins=[checkpoint_io],
            ),
        )
    )


def check_device(hardware: DictConfig) -> None:
    """A GPU preset on a machine without one fails here, before anything is built."""
    if str(hardware.accelerator) not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise UserError("hardware.accelerator=gpu, but torch sees no CUDA GPU on this machine: use hardware=cpu")


HP_METRIC = "hparams/final_loss"  # the stage's last training loss: the metric of TensorBoard's HParams view


@dataclass(frozen=True)
class RunPlan:
    """What a stage run will do, known before anything is allocated: printed at start (and by dry_run) and
    logged as the run's resolved hyper-parameters."""

    stage: int
    precision: str
    precision_reason: str
    device: str
    world_size: int
    micro_batch: int
    accumulate: int
    seq_len: int
    tokens_per_step: int
    steps: int
    tokens: int
    stage_tokens: int
    output_dir: str

    def block(self, start: str) -> str:
        return "\n".join(
            [
                f"stage {self.stage}: {start}",
                f"  precision {self.precision} ({self.precision_reason}); device {self.device} x {self.world_size}",
                f"  {self.tokens_per_step:,} tokens/step = {self.micro_batch} sequences x {self.seq_len} tokens x "
                f"{self.accumulate} accumulation x {self.world_size} rank(s)",
                f"  {self.steps:,} steps = {self.tokens:,} tokens (stage budget {self.stage_tokens:,})",
                f"  output {self.output_dir}",
            ]
        )


def plan_run(cfg: DictConfig) -> RunPlan:
    """From the config alone (no data, no model): the batch accounting, steps, precision and device; every value
    it reads is checked here, before any work."""
    batch = step_batch(cfg)
    tokens_per_step = batch.tokens_per_step
    budget = training_tokens(cfg)
    if tokens_per_step > budget:
        raise UserError(
            f"batch {batch.name} is {tokens_per_step:,} tokens/step, more than the "
            f"{budget:,} tokens stage {cfg.stage} trains: pick a smaller batch= (or raise "
            f"data.stages.{cfg.stage}.tokens / train.max_tokens)"
        )
    n_ranks = world_size(cfg.hardware)
    micro_batch, seq_len = micro_batch_size(cfg), int(cfg.model.max_seq_len)
    accumulate = accumulation_steps(tokens_per_step, micro_batch, seq_len, n_ranks)
    steps = math.ceil(budget / tokens_per_step)
    accelerator = str(cfg.hardware.accelerator)
    shape = ProbeShape(micro_batch * seq_len, int(cfg.model.n_embd), int(cfg.model.ffn_hidden))
    precision = resolve(str(cfg.hardware.precision), accelerator, shape)
    return RunPlan(
        stage=int(cfg.stage),
        precision=precision.precision,
        precision_reason=precision.reason,
        device=accelerator,
        world_size=n_ranks,
        micro_batch=micro_batch,
        accumulate=accumulate,
        seq_len=seq_len,
        tokens_per_step=tokens_per_step,
        steps=steps,
        tokens=steps * tokens_per_step,
        stage_tokens=stage_budget(cfg),
        output_dir=str(cfg.paths.output_dir),
    )


def run(cfg: DictConfig) -> None:
    """Train the selected stage (cfg.stage) from where `minimath.start.decide` says it starts; dry_run:
    print the parameter counts and, given prepared data, the plan, without allocating the model. The stage
    directory is held (`stage_lock`) and checked against this config's fingerprint before anything else."""
    trainer_arguments(cfg, {})  # a clash with what the run sets is an error before any work
    check_init_vocab(cfg)
    if cfg.dry_run:
        return dry_run(cfg)
    check_device(cfg.hardware)
    set_threads(cfg.hardware.get("threads"))
    plan = plan_run(cfg)
    with stage_lock(cfg.paths.output_dir):
        train(cfg, plan, Path(cfg.paths.output_dir))
        if cfg.final_heldout:
            evaluate_final(cfg, Path(cfg.paths.output_dir))
        if cfg.final_merges or cfg.final_stream_loss:
            finish_measures(cfg, Path(cfg.paths.output_dir))


def objective_value(cfg: DictConfig) -> float:
    """`objective: {tag, tail}`: the mean of the stage's last `tail` logged values of the scalar `tag` (from its
    TensorBoard events, so a finished stage asked again answers the same); nan when any of them is not finite."""
    from minimath.tb import read_all_scalars

    if str(cfg.stage) == ALL_STAGES:
        raise UserError("objective is one stage's value: pick the stage (stage=N), not the whole curriculum")
    tag, tail = str(cfg.objective.tag), int(cfg.objective.tail)
    values = list(read_all_scalars(Path(cfg.paths.output_dir) / "tb").get(tag, {}).values())
    if len(values) < tail:
        raise UserError(
            f"objective: {tag} has {len(values)} logged values in {cfg.paths.output_dir}, fewer than {tail}"
        )
    window = values[-tail:]
    value = sum(window) / tail
    log.info(f"objective: {tag}, mean of the last {tail} logged values = {value:.6f}")
    return value if math.isfinite(value) else math.nan


def evaluate_final(cfg: DictConfig, stage_dir: Path) -> dict:
    """`final_heldout=true`: the stage's final checkpoint on the held-out sets, into its `heldout.json` (the
    curriculum's per-stage evaluation, cached by checkpoint hash); printed as one row."""
    from minimath.curriculum import evaluate_stage, table

    row = evaluate_stage(stage_dir, str(cfg.stage), step_batch(cfg).name, int(cfg.curriculum_eval_items), cfg.data)
    print(table([row]))
    return row


def merge_specs(cfg: DictConfig) -> dict[str, tuple[int, float | None]]:
    """`final_merges` as {name: (last, ema)}; a malformed entry is a one-line error naming it."""
    specs = OmegaConf.to_container(cfg.final_merges, resolve=True) if cfg.final_merges else {}
    if not isinstance(specs, dict):
        raise UserError(f"final_merges={specs}: expected {{NAME: {{last: K, ema: null}}, ...}}")
    out = {}
    for name, spec in specs.items():
        if not isinstance(spec, dict) or set(spec) - {"last", "ema"} or not isinstance(spec.get("last"), int):
            raise UserError(f"final_merges.{name}={spec}: expected {{last: K (a whole number), ema: null or a decay}}")
        out[str(name)] = (spec["last"], spec.get("ema"))
    return out


def finish_measures(cfg: DictConfig, stage_dir: Path) -> dict[str, float]:
    """`final_merges` and `final_stream_loss` of a finished stage, into its `results.json`: each merge of its last
    step checkpoints (`minimath.average.merge_last`) with its held-out row when `final_heldout` is on
    (`<name>/<set>`), and the loss of the final checkpoint and of each merge on the same unseen stretch of the stage's
    stream (`stream_loss/<final|name>`, `minimath.eval.stream`)."""
    from minimath.average import merge_last
    from minimath.curriculum import EVAL_CACHE, ROW_FIELDS, evaluate_checkpoint
    from minimath.eval.stream import stream_losses

    results: dict[str, float] = {}
    merged = {name: merge_last(stage_dir, name, last, ema) for name, (last, ema) in merge_specs(cfg).items()}
    for name, path in merged.items():
        if cfg.final_heldout:
            cache = path.with_name(f"{path.stem}.{EVAL_CACHE}")
            row = evaluate_checkpoint(
                path, cache, str(cfg.stage), step_batch(cfg).name, int(cfg.curriculum_eval_items), cfg.data
            )
            results.update({f"{name}/{k}": v for k, v in row.items() if k not in ROW_FIELDS})
    if cfg.final_stream_loss:
        spec = cfg.final_stream_loss
        if not OmegaConf.is_dict(spec) or set(spec) != {"first", "count"}:
            raise UserError(f"final_stream_loss={spec}: expected {{first: N, count: M}} (positions of the stream)")
        first, count = int(spec.first), int(spec.count)
        ckpts = {"final": checkpoint_dir(stage_dir) / FINAL, **merged}
        results.update({f"stream_loss/{k}": v for k, v in stream_losses(cfg, first, count, ckpts).items()})
    atomic_write_json(stage_dir / "results.json", results)
    log.info("final measures: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    return results


def dry_run(cfg: DictConfig) -> None:
    """Print the parameter counts (on the meta device) and each stage's plan with its memory and time per rank
    (`minimath.planner`), or the error it would stop with."""
    from minimath.planner import LOW_PRECISION, ResourcePlan, check_settings

    check_settings(cfg.hardware.gpu_memory_gib, cfg.hardware.planned_mfu)
    manifest = prepare(cfg.data, log=log.info) if cfg.model.compact_vocab else None  # its ids are the data's
    model_config = build_model_config(cfg.model, build_tokenizer(cfg.model, manifest))
    counts = report_params(model_config)
    print(f"params total={counts['total']} non_embedding={counts['non_embedding']} embedding={counts['embedding']}")
    stages = [str(k) for k in cfg.data.stages] if str(cfg.stage) == ALL_STAGES else [str(cfg.stage)]
    for key in stages:  # each stage's plan, or the error that stage would stop with
        staged = cfg if len(stages) == 1 else stage_config(cfg, key, command_line_overrides())
        try:
            plan = plan_run(staged)
        except UserError as err:
            print(f"stage {key}: would stop with: error: {err}")
            continue
        print(plan.block("dry run: nothing is allocated"))
        if plan.precision in LOW_PRECISION:
            print(ResourcePlan.of_stage(model_config, plan, staged.hardware, staged.train.loss_chunk_bytes).block())
        else:
            print(f"  memory and time: not planned for precision {plan.precision} (only {', '.join(LOW_PRECISION)})")


def train(cfg: DictConfig, plan: RunPlan, stage_dir: Path) -> None:
    """Check the stage directory's fingerprint, decide where the stage starts, build the data, model and trainer,
    apply the start, and fit (the caller holds the directory's lock)."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from minimath import provenance
    from minimath import start as stage_start
    from minimath.checkpoint import AtomicCheckpointIO

    start = decide_start(cfg, plan, stage_dir)
    if start.kind is StartKind.FINISHED:
        return log.info(
            f"stage {plan.stage} (batch {step_batch(cfg).name}) {start.describe(0)}: trained with these "
            f"settings ({plan.tokens:,} tokens)"
        )
    if rank_zero_only.rank == 0:
        provenance.record(stage_dir, plan.precision, plan.precision_reason)
    manifest = prepare(cfg.data, log=log.info)
    tokenizer = start_tokenizer(cfg, manifest, start)
    model_config = build_model_config(cfg.model, tokenizer)
    extend_start_vocabulary(start, tokenizer, model_config)
    datamodule = build_datamodule(cfg, manifest, tokenizer)
    schedule = build_schedule(cfg, plan, start)
    module = build_module(cfg, plan, model_config, tokenizer, schedule)
    stage_start.apply(start, module, datamodule, bool(cfg.init_optimizer), schedule.decay_start_tokens)
    resume = start.resume_path
    trainer = build_trainer(
        cfg,
        plan.precision,
        plan.accumulate,
        plan.steps,
        datamodule.source_names,
        AtomicCheckpointIO(preloaded={resume: start.checkpoint} if resume else None),
    )
    log_start(cfg, plan, start, trainer, model_config, tokenizer)
    del start  # the checkpoint dict is Lightning's now: it is let go once restored
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    finish(trainer, module, plan, stage_dir)


def decide_start(cfg: DictConfig, plan: RunPlan, stage_dir: Path) -> StageStart:
    """Record (or check) the stage directory's fingerprint, then decide where the stage starts (`minimath.start`)."""
    from minimath.start import decide

    overrides = command_line_overrides()
    check_fingerprint(stage_dir, Fingerprint.of(cfg), overrides)
    previous = (
        Fingerprint.of(stage_config(cfg, str(plan.stage - 1), overrides))
        if plan.stage > 1 and auto_init_run(cfg.init_from, stage_dir) is not None
        else None
    )  # what init_from=auto looks for
    return decide(stage_dir, plan.stage, cfg.init_from, str(cfg.resume), cfg.branch_from, previous)


def build_schedule(cfg: DictConfig, plan: RunPlan, start: StageStart) -> Schedule:
    """The LR schedule over this run's tokens, with the stage's own settings (`data.stages.<N>.scheduler`, e.g. a
    longer decay in stage 4) over the scheduler group's; a decay branch trains its decay alone (no second warmup)."""
    branch = {"warmup_steps": 0, "warmup_tokens": 0} if start.kind is StartKind.BRANCH else {}
    return hydra.utils.instantiate(
        stage_scheduler(cfg, str(plan.stage)), total_tokens=plan.tokens, tokens_per_step=plan.tokens_per_step, **branch
    )


def stage_scheduler(cfg: DictConfig, stage: str) -> DictConfig:
    """The scheduler group's settings with the stage's own (`data.stages.<N>.scheduler`) over them, where the
    chosen schedule has that setting (a WSD decay length means nothing to scheduler=cosine: said, and left out)."""
    own = cfg.data.stages[stage].get("scheduler") or {}
    if not own:
        return cfg.scheduler
    accepted = inspect.signature(hydra.utils.get_class(cfg.scheduler._target_)).parameters
    kept = {k: v for k, v in own.items() if k in accepted}
    if kept:
        log.info(f"  LR schedule: stage {stage}'s own {', '.join(f'{k}={v}' for k, v in kept.items())}")
    if len(kept) < len(own):
        dropped = ", ".join(f"data.stages.{stage}.scheduler.{k}" for k in own if k not in kept)
        log.info(f"  LR schedule: {dropped} not used by {cfg.scheduler._target_.rsplit('.', 1)[-1]}")
    return OmegaConf.merge(cfg.scheduler, kept)


def build_module(
    cfg: DictConfig, plan: RunPlan, model_config: ModelConfig, tokenizer: TokenizerLike, schedule: Schedule
) -> MiniMathModule:
    """The LightningModule, seeded: its weights are the run's seed's (a start then loads over them)."""
    import lightning as L

    from minimath.lit_module import MiniMathModule, module_hparams

    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    optim = OmegaConf.to_container(cfg.optim, resolve=True)
    heldout = OmegaConf.to_container(cfg.data.heldout, resolve=True) if "heldout" in cfg.data else {}
    module = MiniMathModule(
        **module_hparams(model_config, optim, tokenizer.state_dict(), heldout),
        lr_schedule=schedule,
        max_nonfinite_steps=int(cfg.train.max_nonfinite_steps),
        stage=plan.stage,
        tokens_per_step=plan.tokens_per_step,
        loss_chunk_bytes=cfg.train.loss_chunk_bytes,
        z_loss=float(cfg.train.z_loss),
        loss_guard=hydra.utils.instantiate(cfg.train.loss_guard) if cfg.train.loss_guard else None,
    )
    module.model.activation_checkpointing = bool(cfg.hardware.activation_checkpointing)
    if cfg.train.compile:
        module.model.compile()  # in place: parameter names (and checkpoints) stay the same
    return module


def log_start(
    cfg: DictConfig,
    plan: RunPlan,
    start: StageStart,
    trainer: L.Trainer,
    model_config: ModelConfig,
    tokenizer: TokenizerLike,
) -> None:
    """The plan and the model on the console, and the resolved config as every logger's hyper-parameters (with a
    metric, or TensorBoard's HParams view is empty; its value comes at the end)."""
    from minimath.model import count_params

    log.info(plan.block(start.describe(plan.tokens_per_step)))
    log.info(
        f"  model {cfg.model.name}: {count_params(model_config)['non_embedding']:,} non-embedding params, "
        f"vocab {tokenizer.vocab_size} -> {model_config.vocab_size} rows"
    )
    for logger in trainer.loggers:
        logger.log_hyperparams(
            {**OmegaConf.to_container(cfg, resolve=True), "resolved": asdict(plan)}, metrics={HP_METRIC: math.nan}
        )


def finish(trainer: L.Trainer, module: MiniMathModule, plan: RunPlan, stage_dir: Path) -> None:
    """After `fit`: an interrupt is an `Interrupted` naming the saved step; a stage trained to its end saves its full
    state and publishes it as final.ckpt."""
    from minimath.callbacks import Checkpointing

    saver = next(c for c in trainer.callbacks if isinstance(c, Checkpointing))  # always built (build_callbacks)
    if saver.interrupted_at is not None:
        raise Interrupted(
            f"stage {plan.stage} stopped at step {saver.interrupted_at:,} of {plan.steps:,} "
            f"({module.tokens_seen:,} tokens seen); saved {checkpoint_dir(stage_dir) / LAST}: "
            f"rerun the same command to continue"
        )
    if trainer.global_step >= plan.steps and not trainer.interrupted:
        saver.save_last(trainer)  # full state
        log.to_loggers(trainer.loggers, {HP_METRIC: module.last_loss}, step=module.tokens_seen)
        for logger in trainer.loggers:
            logger.save()
        if trainer.is_global_zero:  # one file, consolidated from a sharded last.ckpt
            log.info(f"stage {plan.stage} finished: {mark_final(stage_dir)}")
        trainer.strategy.barrier("final checkpoint")
