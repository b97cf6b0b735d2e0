"""What `eval.py` does in each mode: evaluate a checkpoint, re-score saved predictions, or generate."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from minimath.checkpoint import CheckpointMeta, load_checkpoint
from minimath.config import CONF_DIR
from minimath.data.synth.base import DocumentGenerator
from minimath.errors import UserError
from minimath.eval.generation import GenerationConfig, inference_objects
from minimath.eval.hf_model import hf_directory, load_hf
from minimath.eval.runner import LanguageModel, Protocol, language_model, rescore, run_task, write_results
from minimath.eval.tasks import (
    Task,
    as_generator,
    heldout_generators,
    heldout_task,
    load_public_task,
    read_records,
    task_file_config,
    task_names,
)
from minimath.eval.tool import ToolSettings
from minimath.io import remove_if_only
from minimath.model import Transformer
from minimath.tokenizer import TokenizerLike


def build_protocol(cfg: DictConfig) -> Protocol:
    p = OmegaConf.to_container(cfg.protocol, resolve=True)
    return Protocol(
        name=p["name"],
        shots=p["shots"],
        extraction=p["extraction"],
        subset=p["subset"],
        seed=p["seed"],
        generation=GenerationConfig(**p["generation"]),
        batch_size=p["batch_size"],
        bare_percent=bool(p["bare_percent"]),
        tool=ToolSettings.from_config(p["tool"]) if p.get("tool") else None,
    )


def heldout_generator(task_cfg: DictConfig, trained: dict | None) -> DocumentGenerator:
    """The generator of the held-out set: the one the checkpoint was trained with (saved in it), else the one of
    the data config the task names (`data:` in conf/task/<name>.yaml)."""
    if trained and task_cfg.name in trained:
        return as_generator(trained[task_cfg.name])
    path = CONF_DIR / "data" / f"{task_cfg.data}.yaml"
    if not path.is_file():
        raise UserError(f"task {task_cfg.name}: no data config {path} (set task.data)")
    return heldout_generators(OmegaConf.load(path))[task_cfg.name]


def build_task(task_cfg: DictConfig, trained_heldout: dict | None = None) -> Task:
    if task_cfg.get("heldout"):
        return heldout_task(
            task_cfg.name, int(task_cfg.n), heldout_generator(task_cfg, trained_heldout), int(task_cfg.seed)
        )
    return load_public_task(
        task_cfg.name,
        task_cfg.format,
        task_cfg.get("path"),
        task_cfg.get("hub"),
        task_cfg.get("hub_config"),
        task_cfg.get("split", "test"),
        task_cfg.get("fewshot_path"),
        task_cfg.get("fewshot_split", "train"),
    )


def task_overrides() -> list[str]:
    """`task=...` / `task.<key>=...` from the command line (empty outside a Hydra run)."""
    if not HydraConfig.initialized():
        return []
    return [o for o in HydraConfig.get().overrides.task if o.lstrip("+~").split("=")[0].split(".")[0] == "task"]


def task_config(cfg: DictConfig, name: str) -> DictConfig:
    """conf/task/<name>.yaml; the composed `task` (with its command-line overrides, e.g. `task.path=FILE`) when it
    is this task."""
    if name == cfg.task.name:
        return cfg.task
    return task_file_config(name, cfg.paths)  # resolved against this run's paths (for `${paths.eval_root}`)


def run_label(ckpt: Path) -> str:
    """`<run>/<stage dir>` of a checkpoint under `<runs>/<run>/<stage dir>/checkpoints/`, else its file name."""
    parents = ckpt.resolve().parents
    if len(parents) >= 3 and parents[0].name == "checkpoints":
        return f"{parents[2].name}/{parents[1].name}"
    return ckpt.name


@dataclass
class EvaluatedModel:
    """What `ckpt=` names, ready to evaluate: a `train.py` checkpoint (our Transformer, its tokenizer, the held-out
    sets it trained with, its tokens seen) or `hf:DIR` (any transformers causal LM with its own tokenizer)."""

    model: Transformer | LanguageModel
    tokenizer: TokenizerLike
    label: str  # the row label in results.md
    heldout: dict = field(default_factory=dict)
    tokens_seen: int | None = None


def load_model(spec: str) -> EvaluatedModel:
    directory = hf_directory(spec)
    if directory is not None:
        lm = load_hf(directory)
        return EvaluatedModel(lm, lm.tokenizer, lm.tokenizer.name)
    ckpt = load_checkpoint(spec)
    model, tokenizer = inference_objects(ckpt, spec)
    meta = CheckpointMeta.of(ckpt)
    return EvaluatedModel(model, tokenizer, run_label(Path(spec)), meta.heldout, meta.tokens_seen)


def evaluate(cfg: DictConfig) -> dict:
    if not cfg.ckpt:
        raise UserError("mode=evaluate needs ckpt=PATH (a train.py checkpoint, or hf:DIR for a transformers model)")
    loaded = load_model(str(cfg.ckpt))
    trained_heldout = loaded.heldout
    protocol = build_protocol(cfg)
    summaries, records = {}, {}
    names = task_names(cfg.tasks) if cfg.tasks is not None else list(trained_heldout)
    if not names:
        raise UserError(f"{cfg.ckpt} names no held-out sets: pass tasks=[...] (names of conf/task/*.yaml)")
    if task_overrides() and cfg.task.name not in names:
        raise UserError(
            f"{' '.join(task_overrides())} sets up task {cfg.task.name}, which tasks={names} does not "
            f"evaluate: add it to tasks=[...] (or select it with task=<name>)"
        )
    for name in names:
        task = build_task(task_config(cfg, name), trained_heldout)
        summaries[name], records[name] = run_task(loaded.model, loaded.tokenizer, task, protocol)
        print(json.dumps({k: v for k, v in summaries[name].items() if k != "protocol"}))
    out = Path(cfg.paths.output_dir)
    model_name = cfg.model_name or loaded.label
    write_results(out, summaries, records, model_name)
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(out / "tb")) as writer:
        for name, summary in summaries.items():
            writer.add_scalar(f"eval_{protocol.name}/{name}", summary["accuracy"], loaded.tokens_seen)
    print((out / "results.md").read_text().rstrip())
    return summaries


def rescore_predictions(cfg: DictConfig) -> dict:
    if not cfg.predictions:
        raise UserError("mode=rescore needs predictions=FILE.jsonl")
    predictions = read_records(cfg.predictions)
    for i, p in enumerate(predictions, start=1):
        if "doc_id" not in p or not str(p["doc_id"]).lstrip("-").isdigit():
            raise UserError(f"{cfg.predictions}:{i}: each line needs an integer doc_id")
    summary, records = rescore(build_task(cfg.task), predictions, build_protocol(cfg))
    write_results(Path(cfg.paths.output_dir), {cfg.task.name: summary}, {cfg.task.name: records}, "predictions")
    print(json.dumps(summary))
    return summary


def try_prompt(cfg: DictConfig) -> str:
    if not cfg.ckpt or cfg.prompt is None:
        raise UserError("mode=generate needs ckpt=PATH and prompt=TEXT")
    loaded = load_model(str(cfg.ckpt))
    lm = language_model(loaded.model, loaded.tokenizer)
    settings = GenerationConfig(**OmegaConf.to_container(cfg.generate, resolve=True))
    # as every evaluation prompt: our model reads it after a document end, where training documents start
    ids = loaded.tokenizer.encode(lm.frame().start + str(cfg.prompt))
    text = str(cfg.prompt) + lm.generate([ids], settings)[0]
    print(text)
    return text


MODES = {"evaluate": evaluate, "rescore": rescore_predictions, "generate": try_prompt}
WRITES = ("evaluate", "rescore")  # the modes whose output is files


def remove_if_empty(out: Path) -> None:
    """A run that failed before writing results leaves no directory behind."""
    remove_if_only(out, (".hydra", "eval.log"))


def main(cfg: DictConfig):
    if cfg.mode not in MODES:
        raise UserError(f"mode={cfg.mode}: choose evaluate, rescore or generate")
    if cfg.mode != "rescore" and cfg.mode != "evaluate" and task_overrides():
        raise UserError(
            f"{' '.join(task_overrides())}: mode={cfg.mode} reads no task (task= is for mode=rescore and mode=evaluate)"
        )
    out = Path(cfg.paths.output_dir)
    try:
        result = MODES[cfg.mode](cfg)
    except BaseException:
        remove_if_empty(out)
        raise
    if cfg.mode in WRITES:
        # on stderr: stdout stays the mode's product (its last line is the summary scripts read)
        print(f"results written to {out}/ (results.md, results.json, one <task>.jsonl per task)", file=sys.stderr)
    else:
        remove_if_empty(out)
    return result
