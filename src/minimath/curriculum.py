"""The whole curriculum (`stage=all`, the default): every stage of the data config in order, each as its own
`train.py` run (so each is resumable and lands in its own stage directory), then the held-out evaluation of this
run's stages' final checkpoints, printed and written as `<run>/curriculum.md` and `curriculum.json`.

A stage already finished with this run's settings (its fingerprint, `minimath.runs`) starts no process; a stage's
evaluation is kept beside its checkpoints (`heldout.json`, keyed by the checkpoint's hash, the number of items and
the held-out generators), so reprinting a finished curriculum evaluates nothing again."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from minimath import log
from minimath.config import ALL_STAGES, step_batch
from minimath.data.shards import sha256_file
from minimath.data.synth.equations import FORMS as EQUATION_FORMS
from minimath.errors import INTERRUPTED_STATUS, Interrupted, UserError, stop
from minimath.eval.tasks import HELDOUT_VERSION
from minimath.hardware import set_threads
from minimath.io import atomic_write_bytes, atomic_write_json
from minimath.runs import (
    FINAL,
    Fingerprint,
    checkpoint_dir,
    command_line_overrides,
    result_overrides,
    run_dir,
    stage_config,
    variant_suffix,
)

ROW_FIELDS = ("stage", "batch", "tokens_seen", "final_loss")
# the per-category columns in the order the sources list them: arithmetic's operators, the equations' forms
CATEGORY_ORDER = {"+": 0, "-": 1, "*": 2, "/": 3, **{form: i for i, form in enumerate(EQUATION_FORMS)}}
EVAL_CACHE = "heldout.json"


def wants_curriculum(cfg: DictConfig) -> bool:
    """`stage=all` (the default): decided by the composed value, so a config file, `--cfg job` and the command
    line agree."""
    return str(cfg.stage) == ALL_STAGES


def config_arguments(script: str) -> list[str]:
    """The run's config location as flags for each stage process: `--config-path` when the primary config directory
    is not `script`'s own `conf/`, `--config-dir` for each directory added on the command line, `--config-name` when
    it is not `config`. Read from Hydra's record of this run, not from sys.argv: a sweep job that joblib runs in a
    worker process has the worker's argv."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    own = (Path(script).resolve().parent / "conf").resolve()
    args = []
    for source in hydra_cfg.runtime.config_sources:
        path = str(source.path).removeprefix("file://")
        if source.provider == "main" and Path(path).resolve() != own:
            args += ["--config-path", path]
        elif source.provider == "command-line":
            args += ["--config-dir", path]
    if hydra_cfg.job.config_name != "config":
        args += ["--config-name", str(hydra_cfg.job.config_name)]
    return args


def run_stage_process(command: list[str]) -> int:
    """Run one stage and wait for it. A Ctrl-C reaches the stage too (same process group): the stage finishes
    its step and saves, so the driver waits for it rather than dying first; a SIGTERM sent to the driver alone
    is passed on."""
    process = subprocess.Popen(command)
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum)),
    }
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def finished_here(staged: DictConfig) -> bool:
    """Whether a stage's directory holds a final checkpoint trained with exactly these settings."""
    stage_dir = Path(staged.paths.output_dir)
    recorded = Fingerprint.load(stage_dir) if (checkpoint_dir(stage_dir) / FINAL).is_file() else None
    return recorded is not None and recorded.digest == Fingerprint.of(staged).digest


def run_stages(cfg: DictConfig, script: str, overrides: list[str]) -> dict[str, DictConfig]:
    """Train each unfinished stage in a fresh process with the user's config location and `overrides`; a failed or
    interrupted stage stops the curriculum with its exit status. Returns {stage: its config, as its process saw
    it (`paths.output_dir`: its directory)}."""
    stages = {str(key): stage_config(cfg, str(key), overrides) for key in cfg.data.stages}
    for key, staged in stages.items():
        if finished_here(staged):
            log.info(f"=== curriculum: stage {key} of {len(stages)}: already finished ({staged.paths.output_dir}) ===")
            continue
        log.info(f"=== curriculum: stage {key} of {len(stages)} ===")
        status = run_stage_process([sys.executable, script, *config_arguments(script), f"stage={key}", *overrides])
        if status == INTERRUPTED_STATUS:
            raise Interrupted(f"the curriculum stopped in stage {key}; rerun the same command to continue")
        if status != 0:
            stop(status, f"stage {key} ended with status {status}")
    return stages


def evaluate_stage(stage_dir: Path, key: str, batch: str, n: int, data_cfg: DictConfig) -> dict:
    """The held-out row of a stage's final checkpoint: read from `heldout.json` when it was computed for this
    checkpoint (by hash), this many items and these generators; else evaluated and stored there."""
    return evaluate_checkpoint(checkpoint_dir(stage_dir) / FINAL, stage_dir / EVAL_CACHE, key, batch, n, data_cfg)


def evaluate_checkpoint(final: Path, cache: Path, key: str, batch: str, n: int, data_cfg: DictConfig) -> dict:
    """The held-out row of checkpoint `final` (a stage's, or a merge of its checkpoints), cached in `cache` by the
    checkpoint's hash, the number of items and the generators."""
    heldout = OmegaConf.to_container(data_cfg.heldout, resolve=True) if "heldout" in data_cfg else {}
    key_of = {
        "checkpoint": sha256_file(final),
        "version": HELDOUT_VERSION,
        "items": n,
        "heldout": hashlib.sha256(json.dumps(heldout, sort_keys=True, default=str).encode()).hexdigest(),
    }
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key_of:
            return stored["row"]
    from minimath.checkpoint import CheckpointMeta, load_checkpoint
    from minimath.eval.generation import inference_objects
    from minimath.eval.runner import Protocol, run_task
    from minimath.eval.tasks import heldout_generators, heldout_task

    log.info(f"evaluating stage {key} ({final}) on {n} held-out items per set ...")
    ckpt = load_checkpoint(final)
    model, tokenizer = inference_objects(ckpt, final)
    meta = CheckpointMeta.of(ckpt)
    row = {"stage": int(key), "batch": batch, "tokens_seen": meta.tokens_seen, "final_loss": meta.last_loss}
    for name, generator in heldout_generators(data_cfg).items():
        summary = run_task(model, tokenizer, heldout_task(name, n, generator), Protocol.heldout())[0]
        row[name] = summary["accuracy"]
        row.update({f"{name}[{c}]": acc for c, acc in summary.get("by_category", {}).items()})
    atomic_write_json(cache, {"key": key_of, "row": row})
    return row


def table(rows: list[dict]) -> str:
    """Accuracy per held-out set, and per operator beside the arithmetic column (`arithmetic[+]`, ...)."""
    names = list(dict.fromkeys(k for r in rows for k in r if k not in ROW_FIELDS and "[" not in k))
    columns = [
        c
        for t in names
        for c in [t]
        + sorted(
            {k for r in rows for k in r if k.startswith(f"{t}[")},
            key=lambda k: CATEGORY_ORDER.get(k[len(t) + 1 : -1], 9),
        )
    ]
    titles = [c.replace("arithmetic[", "").rstrip("]") if c.startswith("arithmetic[") else c for c in columns]
    head = "| stage | batch | tokens seen | final loss | " + " | ".join(titles) + " |"
    lines = [head, "|" + "---|" * (4 + len(columns))]
    for r in rows:
        lines.append(
            f"| {r['stage']} | {r['batch']} | {r['tokens_seen']:,} | {r['final_loss']:.3f} | "
            + " | ".join(f"{100 * r[c]:.1f}%" if c in r else "-" for c in columns)
            + " |"
        )
    return "\n".join(lines)


def run_curriculum(cfg: DictConfig, script: str) -> None:
    """Train the stages, evaluate this run's (not every run's in the directory) and write the table beside them:
    `curriculum.md` for the default settings, `curriculum-<variant>.md` for a run with other settings."""
    set_threads(cfg.hardware.get("threads"))  # the held-out evaluation runs here (each stage sets its own)
    overrides = [o for o in command_line_overrides() if not o.lstrip("+~").startswith(("stage=", "hydra."))]
    dirs = {
        key: (Path(staged.paths.output_dir), step_batch(staged).name)
        for key, staged in run_stages(cfg, script, overrides).items()
    }
    missing = [str(d) for d, _ in dirs.values() if not (checkpoint_dir(d) / FINAL).is_file()]
    if missing:
        raise UserError(f"the curriculum ended without {FINAL} in {', '.join(missing)}")
    rows = [evaluate_stage(d, key, batch, int(cfg.curriculum_eval_items), cfg.data) for key, (d, batch) in dirs.items()]
    text = table(rows)
    out = run_dir(cfg.paths.runs, cfg.run_name) / f"curriculum{variant_suffix(overrides)}.md"
    settings = f" ({', '.join(result_overrides(overrides))})" if result_overrides(overrides) else ""
    atomic_write_bytes(
        out,
        (
            f"# {cfg.run_name}{settings}: held-out accuracy after each stage "
            f"({cfg.curriculum_eval_items} items per set)\n\n{text}\n"
        ).encode(),
    )
    atomic_write_json(out.with_suffix(".json"), rows)
    print(text)
    print(f"written to {out} (and {out.with_suffix('.json').name})")
