"""The whole curriculum (`stage=all`, the default): every stage of the data config in order, each as its own
`train.py` run (so each is resumable and lands in its own stage directory), then the held-out evaluation of every
stage's final checkpoint, printed and written as `<run>/curriculum.md` and `curriculum.json`."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from minimath import log
from minimath.checkpoint import CheckpointMeta, load_checkpoint
from minimath.errors import INTERRUPTED_STATUS, Interrupted, UserError
from minimath.eval.generation import inference_objects
from minimath.eval.runner import Protocol, run_task
from minimath.eval.tasks import heldout_generators, heldout_task
from minimath.io import atomic_write_bytes, atomic_write_json
from minimath.runs import ALL_STAGES, finished_stages, run_dir

ROW_FIELDS = ("stage", "batch", "tokens_seen", "final_loss")
OPERATOR_ORDER = {"+": 0, "-": 1, "*": 2, "/": 3}


def command_line_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task)


def wants_curriculum(cfg: DictConfig) -> bool:
    """`stage=all` (the default): decided by the composed value, so a config file, `--cfg job` and the command
    line agree."""
    return str(cfg.stage.id) == ALL_STAGES


CONFIG_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def config_arguments(argv: list[str]) -> list[str]:
    """The command line's config-location flags (`--config-dir X`, `-cd=X`, ...): each stage process gets them too."""
    kept, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in CONFIG_FLAGS and i + 1 < len(argv):
            kept += [arg, argv[i + 1]]
            i += 1
        elif arg.split("=", 1)[0] in CONFIG_FLAGS and "=" in arg:
            kept.append(arg)
        i += 1
    return kept


def run_stage_process(command: list[str]) -> int:
    """Run one stage and wait for it. A Ctrl-C reaches the stage too (same process group): the stage finishes
    its step and saves, so the driver waits for it rather than dying first; a SIGTERM sent to the driver alone
    is passed on."""
    process = subprocess.Popen(command)
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum))}
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_stages(cfg: DictConfig, script: str) -> list[str]:
    """Train each stage in a fresh process with the user's config location and overrides; a failed or
    interrupted stage stops the curriculum with its exit status."""
    stages = [str(key) for key in cfg.data.stages]
    overrides = [o for o in command_line_overrides()
                 if not o.lstrip("+~").startswith(("stage=", "hydra."))]
    for key in stages:
        log.info(f"=== curriculum: stage {key} of {len(stages)} ===")
        status = run_stage_process([sys.executable, script, *config_arguments(sys.argv[1:]), f"stage={key}",
                                    *overrides])
        if status == INTERRUPTED_STATUS:
            raise Interrupted(f"the curriculum stopped in stage {key}; rerun the same command to continue")
        if status != 0:
            sys.exit(status)
    return stages


def evaluate_stages(run: Path, stages: list[str], n: int, data_cfg: DictConfig) -> list[dict]:
    protocol = Protocol.heldout()
    tasks = [heldout_task(name, n, generator) for name, generator in heldout_generators(data_cfg).items()]
    rows = []
    for key in stages:
        for batch, final in finished_stages(run, int(key)).items():
            ckpt = load_checkpoint(final)
            model, tokenizer = inference_objects(ckpt, final)
            meta = CheckpointMeta.of(ckpt)
            row = {"stage": int(key), "batch": batch, "tokens_seen": meta.tokens_seen, "final_loss": meta.last_loss}
            for task in tasks:
                summary = run_task(model, tokenizer, task, protocol)[0]
                row[task.name] = summary["accuracy"]
                row.update({f"{task.name}[{c}]": acc for c, acc in summary.get("by_category", {}).items()})
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """Accuracy per held-out set, and per operator beside the arithmetic column (`arithmetic[+]`, ...)."""
    names = list(dict.fromkeys(k for r in rows for k in r if k not in ROW_FIELDS and "[" not in k))
    columns = [c for t in names for c in [t] + sorted({k for r in rows for k in r if k.startswith(f"{t}[")},
                                                         key=lambda k: OPERATOR_ORDER.get(k[len(t) + 1:-1], 9))]
    titles = [c.replace("arithmetic[", "").rstrip("]") if c.startswith("arithmetic[") else c for c in columns]
    head = "| stage | batch | tokens seen | final loss | " + " | ".join(titles) + " |"
    lines = [head, "|" + "---|" * (4 + len(columns))]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['batch']} | {r['tokens_seen']:,} | {r['final_loss']:.3f} | "
                     + " | ".join(f"{100 * r[c]:.1f}%" if c in r else "-" for c in columns) + " |")
    return "\n".join(lines)


def run_curriculum(cfg: DictConfig, script: str) -> None:
    stages = run_stages(cfg, script)
    run = run_dir(cfg.paths.runs, cfg.run_name)
    if not run.is_dir():
        raise UserError(f"no run directory {run} after training")
    rows = evaluate_stages(run, stages, int(cfg.curriculum_eval_items), cfg.data)
    text = table(rows)
    atomic_write_bytes(run / "curriculum.md", (f"# {cfg.run_name}: held-out accuracy after each stage "
                                                   f"({cfg.curriculum_eval_items} items per set)\n\n{text}\n").encode())
    atomic_write_json(run / "curriculum.json", rows)
    print(text)
