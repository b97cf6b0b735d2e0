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
from minimath.eval.tasks import heldout_generators, heldout_task
from minimath.runs import finished_stages

HELDOUT = ("arithmetic", "equations", "word_problems")
OPERATOR_ORDER = {"+": 0, "-": 1, "*": 2, "/": 3}


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


def evaluate_stages(run_dir: Path, stages: list[str], n: int, data_cfg: DictConfig) -> list[dict]:
    protocol = Protocol(name="standard", shots={}, extraction="auto", subset=None, seed=0,
                        generation=GenerationConfig(max_new_tokens=96), batch_size=25)
    generators = heldout_generators(data_cfg)
    tasks = [heldout_task(name, n, generators[name]) for name in HELDOUT]
    rows = []
    for key in stages:
        for batch, final in finished_stages(run_dir, int(key)).items():
            ckpt = load_checkpoint(final)
            model, tokenizer = load_for_inference(final)
            row = {"stage": int(key), "batch": batch, "tokens_seen": int(ckpt.get("tokens_seen", 0)),
                   "final_loss": float(ckpt.get("last_loss", math.nan))}
            for task in tasks:
                summary = run_task(model, tokenizer, task, protocol)[0]
                row[task.name] = summary["accuracy"]
                row.update({f"{task.name}[{c}]": acc for c, acc in summary.get("by_category", {}).items()})
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """Accuracy per held-out set, and per operator beside the arithmetic column (`arithmetic[+]`, ...)."""
    columns = [c for t in HELDOUT for c in [t] + sorted({k for r in rows for k in r if k.startswith(f"{t}[")},
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
    run_dir = Path(str(cfg.paths.runs)) / str(cfg.run_name)
    if not run_dir.is_dir():
        raise UserError(f"no run directory {run_dir} after training")
    rows = evaluate_stages(run_dir, stages, int(cfg.curriculum_eval_items), cfg.data)
    text = table(rows)
    atomic_write_bytes(run_dir / "curriculum.md", (f"# {cfg.run_name}: held-out accuracy after each stage "
                                                   f"({cfg.curriculum_eval_items} items per set)\n\n{text}\n").encode())
    atomic_write_json(run_dir / "curriculum.json", rows)
    print(text)
