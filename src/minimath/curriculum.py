"""The whole curriculum: every stage of the data config in order, each as its own `train.py` run (so each is
resumable and lands in its own stage directory), then the held-out evaluation of every stage's final
checkpoint, printed and written as `<run>/curriculum.md` and `curriculum.json`."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from minimath.checkpoint import load_checkpoint
from minimath.data.shards import atomic_write_bytes, atomic_write_json
from minimath.errors import UserError
from minimath.eval.generation import GenerationConfig, load_for_inference
from minimath.eval.runner import Protocol, run_task
from minimath.eval.tasks import heldout_task
from minimath.runs import finished_stages

HELDOUT = ("arithmetic", "equations", "word_problems")


def command_line_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task)


def wants_curriculum(cfg: DictConfig) -> bool:
    """`curriculum=auto` and no `stage=` on the command line (an explicit stage trains that stage only)."""
    if str(cfg.curriculum) != "auto":
        return False
    return not any(o.lstrip("+~").split("=")[0] == "stage" for o in command_line_overrides())


def run_stages(cfg: DictConfig, script: str) -> list[str]:
    """Train each stage in a fresh process; a failed stage stops the curriculum with its exit status."""
    stages = [str(key) for key in cfg.data.stages]
    overrides = [o for o in command_line_overrides() if not o.startswith(("curriculum=", "hydra."))]
    for key in stages:
        print(f"=== curriculum: stage {key} of {len(stages)} ===", flush=True)
        done = subprocess.run([sys.executable, script, f"stage={key}", "curriculum=false", *overrides])
        if done.returncode != 0:
            sys.exit(done.returncode)
    return stages


def evaluate_stages(run_dir: Path, stages: list[str], n: int) -> list[dict]:
    protocol = Protocol(name="standard", shots={}, extraction="auto", subset=None, seed=0,
                        generation=GenerationConfig(max_new_tokens=96), batch_size=25)
    tasks = [heldout_task(name, n) for name in HELDOUT]
    rows = []
    for key in stages:
        for batch, final in finished_stages(run_dir, int(key)).items():
            ckpt = load_checkpoint(final)
            model, tokenizer = load_for_inference(final)
            row = {"stage": int(key), "batch": batch, "tokens_seen": int(ckpt.get("tokens_seen", 0)),
                   "final_loss": float(ckpt.get("last_loss", math.nan))}
            for task in tasks:
                row[task.name] = run_task(model, tokenizer, task, protocol)[0]["accuracy"]
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    head = "| stage | batch | tokens seen | final loss | " + " | ".join(f"{t} acc." for t in HELDOUT) + " |"
    lines = [head, "|" + "---|" * (4 + len(HELDOUT))]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['batch']} | {r['tokens_seen']:,} | {r['final_loss']:.3f} | "
                     + " | ".join(f"{100 * r[t]:.1f}%" for t in HELDOUT) + " |")
    return "\n".join(lines)


def run_curriculum(cfg: DictConfig, script: str) -> None:
    stages = run_stages(cfg, script)
    run_dir = Path(str(cfg.paths.runs)) / str(cfg.run_name)
    if not run_dir.is_dir():
        raise UserError(f"no run directory {run_dir} after training")
    rows = evaluate_stages(run_dir, stages, int(cfg.curriculum_eval_items))
    text = table(rows)
    atomic_write_bytes(run_dir / "curriculum.md", (f"# {cfg.run_name}: held-out accuracy after each stage "
                                                   f"({cfg.curriculum_eval_items} items per set)\n\n{text}\n").encode())
    atomic_write_json(run_dir / "curriculum.json", rows)
    print(text)
