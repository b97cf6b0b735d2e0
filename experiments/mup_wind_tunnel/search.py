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
from minimath.seeds import mean_std

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
        std = mean_std(values)[1]
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


def grid_tables(grid: Path) -> str:
    """Loss (mean ± sample std over seeds) per parametrisation, width and LR, the best LR of each row in bold."""
    report = build(grid, by=[PARAM, WIDTH, "optim.lr"], metrics=[LOSS], tail=10, compare_only=[])
    cells: dict[tuple[str, str], dict[float, list[float]]] = {}
    for param, width, lr in report.groups:
        cells.setdefault((param, width), {})[float(lr)] = list(report.per_group((param, width, lr), LOSS).values())
    lrs = sorted({lr for row in cells.values() for lr in row})
    lines = [
        "| parametrisation | width | " + " | ".join(f"LR {lr:g}" for lr in lrs) + " | best LR |",
        "|---|---|" + "---|" * (len(lrs) + 1),
    ]
    for (param, width), row in sorted(cells.items(), key=lambda kv: (kv[0][0], int(kv[0][1].lstrip("w")))):
        means = {lr: sum(v) / len(v) for lr, v in row.items() if v and all(math.isfinite(x) for x in v)}
        best = min(means, key=means.get)
        out = []
        for lr in lrs:
            values = row.get(lr, [])
            if not values:
                out.append("–")
                continue
            if lr not in means:
                out.append("diverged")
                continue
            std = mean_std(values)[1]
            text = f"{means[lr]:.4f} ± {std:.4f}"
            out.append(f"**{text}**" if lr == best else text)
        lines.append(f"| {param} | {width.lstrip('w')} | " + " | ".join(out) + f" | {best:g} |")
    return "\n".join(lines)


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


def neighbour_cells(g: dict) -> list[str]:
    cells = []
    for lr in (g["best_lr"] / 2, g["best_lr"] * 2):
        c = g["neighbours_minus_best"].get(f"{lr:g}")
        cells.append(f"{c['difference']:+.4f} ({c['p']:.2g})" if c else "–")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("searches", nargs="*", help="OPTUNA_DIR:WIDTH[:LABEL] (none: the grid's tables only)")
    parser.add_argument("--param", default="mup", help="the parametrisation whose grid is tested (sp or mup)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results_search.json")
    args = parser.parse_args()
    print(grid_tables(args.grid) + "\n")
    grid, grid_runs = grid_summary(args.grid, args.param)
    print(f"{args.param}: the grid's best LR against its neighbours (difference of loss, paired t over seeds 1–2)\n")
    print("| width | best LR | loss (mean ± std) | LR/2 − best (p) | 2·LR − best (p) |")
    print("|---|---|---|---|---|")
    for width in sorted(grid, key=lambda w: int(w.lstrip("w"))):
        g = grid[width]
        cells = neighbour_cells(g)
        print(
            f"| {width.lstrip('w')} | {g['best_lr']:g} | {g['loss_mean']:.4f} ± {g['loss_std']:.4f} | {cells[0]} | "
            f"{cells[1]} |"
        )
    searches = {}
    for spec in args.searches:
        directory, width, *label = spec.split(":")
        searches[f"{width}:{label[0] if label else 'sampler_seed_0'}"] = {
            "width": width,
            **search_summary(Path(directory), grid[width]),
        }
    if searches:
        print(
            "\n| width | search | grid best LR | search best LR | search loss (seed 1) | grid best, seed 1 | trials needed |"
        )
        print("|---|---|---|---|---|---|---|")
    for key in sorted(searches, key=lambda k: (int(k.split(":")[0].lstrip("w")), k)):
        s = searches[key]
        g = grid[s["width"]]
        needed = f"{s['trials_needed']} of {s['n_trials']}" if s["trials_needed"] else f"not in {s['n_trials']}"
        print(
            f"| {s['width'].lstrip('w')} | {key.split(':', 1)[1]} | {g['best_lr']:g} | {s['best_lr']:.3g} | "
            f"{s['best_loss']:.4f} | {g['best_seed1']:.4f} | {needed} |"
        )
    atomic_write_json(
        args.out, {"parametrisation": args.param, "grid": grid, "grid_runs": grid_runs, "searches": searches}
    )
    print(f"\nevery grid run and trial: {args.out}")


if __name__ == "__main__":
    main()
