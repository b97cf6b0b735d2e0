"""The µP wind tunnel's LR grid against Optuna's search, per width (issue 24's LR search).

    python experiments/mup_wind_tunnel/search.py GRID_DIR OPTUNA_DIR:WIDTH[:LABEL] [...] [--out results_search.json]

GRID_DIR: the sweep directory of `python train.py -m experiment=mup_wind_tunnel` (7 LRs × 3 widths × seeds 1, 2;
`--param`: the parametrisation whose grid the searches are compared with). OPTUNA_DIR:WIDTH: the sweep directory of one `hparams_search=wind_tunnel_lr` search at that
width (`w64`, ...; seed 1). "Loss" is the mean training loss of a run's last 10 steps (the search's objective).

Per width: the grid's best LR (lowest mean over seeds), its loss (mean ± sample std over seeds) and its neighbours'
paired differences (paired t over seeds: is the best distinguishable from the LRs a factor 2 away?); the search's best
LR and loss after all its trials; and **trials needed**: the first trial (in the order Optuna proposed them — Hydra's
job number; trials ran two at a time) whose loss is within the grid best's seed spread of the grid best's seed-1 loss
(loss ≤ seed-1 loss of the grid's best + the grid best's std over seeds). Writes every grid run and every trial, with
provenance, to the output JSON.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import yaml

from minimath.io import atomic_write_json
from minimath.report import build, collect, compare

WIDTH = "arm/mup_wind_tunnel_width"
PARAM = "arm/mup_wind_tunnel"
LOSS = "tb/train/loss@tail10"


def job_number(run_dir: Path) -> int:
    return int(yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["num"])


def grid_summary(grid: Path, parametrisation: str) -> tuple[dict, list[dict]]:
    report = build(grid, {PARAM: parametrisation}, by=[WIDTH, "optim.lr"], metrics=[LOSS], tail=10)
    rows = {}
    for (width, lr), _runs in report.groups.items():
        per_seed = report.per_group((width, lr), LOSS)
        rows.setdefault(width, {})[float(lr)] = per_seed
    out = {}
    for width, by_lr in rows.items():
        means = {lr: sum(v.values()) / len(v) for lr, v in by_lr.items() if all(math.isfinite(x) for x in v.values())}
        best = min(means, key=means.get)
        values = list(by_lr[best].values())
        std = (sum((x - means[best]) ** 2 for x in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        neighbours = {
            f"{lr:g}": compare(by_lr[best], by_lr[lr])
            for lr in (best / 2, best * 2)
            if any(math.isclose(lr, k) for k in by_lr)
        }
        out[width] = {
            "best_lr": best,
            "loss_mean": means[best],
            "loss_std": std,
            "best_seed1": by_lr[best]["1"],
            "by_lr": {f"{lr:g}": v for lr, v in sorted(by_lr.items())},
            "neighbours_minus_best": neighbours,
        }
    runs = [
        {"path": str(r.path), "overrides": r.overrides, "provenance": r.provenance, "loss": r.metrics.get(LOSS)}
        for r in report.runs
    ]
    return out, runs


def search_summary(directory: Path, grid_best: dict) -> dict:
    runs, _ = collect(directory, tail=10)
    trials = sorted(
        (
            {
                "trial": job_number(r.path),
                "lr": float(r.overrides["optim.lr"]),
                "loss": r.metrics.get(LOSS, math.nan),
                "provenance": r.provenance,
            }
            for r in runs
        ),
        key=lambda t: t["trial"],
    )
    threshold = grid_best["best_seed1"] + grid_best["loss_std"]
    reached = next((t["trial"] + 1 for t in trials if t["loss"] <= threshold), None)
    best = min((t for t in trials if math.isfinite(t["loss"])), key=lambda t: t["loss"])
    (results_file,) = list(directory.rglob("optimization_results.yaml")) or [None]
    recorded = yaml.safe_load(results_file.read_text()) if results_file else None
    return {
        "trials": trials,
        "n_trials": len(trials),
        "best_lr": best["lr"],
        "best_loss": best["loss"],
        "threshold": threshold,
        "trials_needed": reached,
        "optuna_recorded_best": recorded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("searches", nargs="+", help="OPTUNA_DIR:WIDTH")
    parser.add_argument("--param", default="mup", help="the parametrisation the searches ran (sp or mup)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results_search.json")
    args = parser.parse_args()
    grid, grid_runs = grid_summary(args.grid, args.param)
    searches = {}
    for spec in args.searches:
        directory, width, *label = spec.split(":")
        searches[f"{width}:{label[0] if label else 'sampler seed 0'}"] = {
            "width": width,
            **search_summary(Path(directory), grid[width]),
        }
    print(
        "| width | search | grid best LR | grid loss (mean ± std, seeds 1–2) | LR/2 − best (p) | 2·LR − best (p) | "
        "search best LR | search loss (seed 1) | trials needed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key in sorted(searches, key=lambda k: (int(k.split(":")[0].lstrip("w")), k)):
        s = searches[key]
        width, g = s["width"], grid[s["width"]]
        cells = []
        for lr in (g["best_lr"] / 2, g["best_lr"] * 2):
            c = g["neighbours_minus_best"].get(f"{lr:g}")
            cells.append(f"{c['difference']:+.4f} ({c['p']:.2g})" if c else "–")
        needed = f"{s['trials_needed']} of {s['n_trials']}" if s["trials_needed"] else f"not in {s['n_trials']}"
        print(
            f"| {width.lstrip('w')} | {key.split(':', 1)[1]} | {g['best_lr']:g} | {g['loss_mean']:.4f} ± {g['loss_std']:.4f} | {cells[0]} | "
            f"{cells[1]} | {s['best_lr']:.3g} | {s['best_loss']:.4f} | {needed} |"
        )
    atomic_write_json(args.out, {"grid": grid, "grid_runs": grid_runs, "searches": searches})
    print(f"\nevery grid run and trial: {args.out}")


if __name__ == "__main__":
    main()
