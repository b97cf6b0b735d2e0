"""Checkpoint averaging's table from its sweep (python train.py -m experiment=checkpoint_averaging): per arm — the
last checkpoint, each merge of the constant run, the decay — the loss on the unseen stretch of the stream and the
held-out accuracies, mean ± sample std over seeds, and each arm against the last checkpoint (paired t over seeds,
95% t interval: `minimath.report.compare`). Writes README-ready markdown (report.md), averaging.png and results.json
(every per-run value and each run's provenance) next to this file.

    python experiments/checkpoint_averaging/report.py outputs/checkpoint-averaging
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath import report  # noqa: E402
from minimath.io import atomic_write_bytes, atomic_write_json  # noqa: E402

HERE = Path(__file__).parent
ARM = "arm/checkpoint_averaging"
SETS = ("arithmetic", "arithmetic[+]", "arithmetic[-]", "arithmetic[/]", "equations")
# (row, the sweep's arm, its metric prefix in that arm's run, what the weights are)
ROWS = [
    ("last", "constant", None, "the last checkpoint (step 600)"),
    ("avg2", "constant", "avg2", "uniform mean of the last 2 (steps 575-600)"),
    ("avg4", "constant", "avg4", "uniform mean of the last 4 (steps 525-600)"),
    ("avg8", "constant", "avg8", "uniform mean of the last 8 (steps 425-600)"),
    ("ema8", "constant", "ema8", "EMA 0.8 over the last 8 (steps 425-600)"),
    ("decay", "decay", None, "not a merge: the last 50 steps decayed (exp to 10%)"),
]


def metric_names(prefix: str | None) -> dict[str, str]:
    """{column: metric name in the run} for one row: the final checkpoint's or a merge's."""
    if prefix is None:
        return {"stream loss": "results/stream_loss/final", **{s: f"heldout/{s}" for s in SETS}}
    return {"stream loss": f"results/stream_loss/{prefix}", **{s: f"results/{prefix}/{s}" for s in SETS}}


def per_seed(runs: list[report.Run]) -> dict[str, dict[str, dict[str, float]]]:
    """{row: {column: {seed: value}}}; accuracies in % (a merge's row in results.json holds fractions, as
    heldout.json's does; `minimath.report` gives heldout/ in %)."""
    out = {}
    for row, arm, prefix, _ in ROWS:
        arm_runs = [r for r in runs if r.value(ARM) == arm]
        out[row] = {
            col: {
                r.value("seed"): r.metrics[name] * (100.0 if name.startswith("results/") and col in SETS else 1.0)
                for r in arm_runs
                if name in r.metrics
            }
            for col, name in metric_names(prefix).items()
        }
    return out


def fmt(col: str, value: float) -> str:
    return f"{value:.4f}" if col == "stream loss" else f"{value:.1f}"


def markdown(values: dict, comparisons: dict) -> str:
    cols = list(metric_names(None))
    lines = [
        "| arm | weights | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for row, _, _, what in ROWS:
        cells = []
        for col in cols:
            s = report.summarise(list(values[row][col].values()))
            cells.append(f"{fmt(col, s['mean'])} ± {fmt(col, s['std'])}")
        lines.append(f"| {row} | {what} | " + " | ".join(cells) + " |")
    lines += ["", "| arm − last | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row, *_ in ROWS[1:]:
        cells = []
        for col in cols:
            c = comparisons[row][col]
            lo, hi = c["ci95"]
            cells.append(f"{fmt(col, c['difference'])} [{fmt(col, lo)}, {fmt(col, hi)}] p={c['p']:.3f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("(mean ± sample std over seeds; differences: paired over seeds, 95% t interval, two-sided p)")
    return "\n".join(lines) + "\n"


def figure(values: dict) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, col in zip(axes, ("stream loss", "arithmetic"), strict=True):
        names = [row for row, *_ in ROWS]
        for i, row in enumerate(names):
            seeds = values[row][col]
            s = report.summarise(list(seeds.values()))
            ax.bar(i, s["mean"], yerr=s["std"], color="#9ecae1", capsize=3)
            ax.scatter([i] * len(seeds), list(seeds.values()), color="k", s=8, zorder=3)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(col + (" (nats, unseen stream)" if col == "stream loss" else " (held-out %)"), fontsize=9)
        if col == "stream loss":
            lo = min(min(values[r][col].values()) for r in names)
            hi = max(max(values[r][col].values()) for r in names)
            ax.set_ylim(lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo))
    return report.png_bytes(fig, "bars: mean; error bars: ±1 sample std over seeds; dots: seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="the sweep's run directory (outputs/checkpoint-averaging)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    runs, empty = report.collect(args.dir, {"experiment": "checkpoint_averaging"})
    values = per_seed(runs)
    comparisons = {
        row: {col: report.compare(values["last"][col], values[row][col]) for col in values[row]} for row, *_ in ROWS[1:]
    }
    merges = [row for row, arm, prefix, _ in ROWS if prefix is not None]
    best = min(merges, key=lambda m: report.summarise(list(values[m]["stream loss"].values()))["mean"])
    decay_vs_best = report.compare(values[best]["stream loss"], values["decay"]["stream loss"])
    lo, hi = decay_vs_best["ci95"]
    text = markdown(values, comparisons) + (
        f"\ndecay − the best merge ({best}) on the stream loss: {decay_vs_best['difference']:+.4f} "
        f"[{lo:+.4f}, {hi:+.4f}], p = {decay_vs_best['p']:.3f} (paired t)\n"
    )
    atomic_write_bytes(args.out / "report.md", text.encode())
    atomic_write_bytes(args.out / "averaging.png", figure(values))
    atomic_write_json(
        args.out / "results.json",
        {
            "cells": "mean ± sample std over seeds",
            "test": "two-sided paired t over seeds against the last checkpoint; 95% t interval",
            "values": values,
            "comparisons": comparisons,
            "decay_vs_best_merge": {"best_merge": best, "stream loss": decay_vs_best},
            "runs": [
                {"path": str(r.path), "overrides": r.overrides, "provenance": r.provenance, "values": r.metrics}
                for r in runs
            ],
            "no_metrics": empty,
        },
    )
    print(text)


if __name__ == "__main__":
    main()
