"""Comparing two settings over seeds (experiment reports): mean ± std per setting, the per-seed difference, and
whether the difference beats the seed spread (|mean difference| > 2 × the larger of the two stds)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def heldout_row(results: Path) -> dict[str, float]:
    """Accuracies (%) of an `eval.py` results.json, per task and per category (`arithmetic[+]`, ...)."""
    tasks = json.loads(results.read_text())["tasks"]
    row = {name: 100 * t["accuracy"] for name, t in tasks.items()}
    row.update({f"{name}[{c}]": 100 * a for name, t in tasks.items() for c, a in t.get("by_category", {}).items()})
    return row


def compare(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]], columns: list[str]) -> dict:
    """Per column: (mean, std) of settings a and b over the seeds both have, the paired difference a − b, and
    whether it exceeds the seed spread. A seed missing from either side is an error, not a silent drop."""
    if not a or set(a) != set(b):
        raise ValueError(f"both settings need the same seeds; found {sorted(a)} and {sorted(b)}")
    seeds = sorted(a)
    out = {}
    for column in columns:
        sa, sb = mean_std([a[s].get(column, 0.0) for s in seeds]), mean_std([b[s].get(column, 0.0) for s in seeds])
        diff = mean_std([a[s].get(column, 0.0) - b[s].get(column, 0.0) for s in seeds])
        out[column] = {"a": sa, "b": sb, "difference": diff, "exceeds_spread": abs(diff[0]) > 2 * max(sa[1], sb[1])}
    return out


def markdown(summary: dict, a_title: str, b_title: str) -> str:
    lines = [
        f"| held-out set | {a_title} (mean ± std) | {b_title} (mean ± std) | difference | beyond 2× the larger "
        "seed std? |",
        "|---|---|---|---|---|",
    ]
    for column, s in summary.items():
        lines.append(
            f"| {column} | {s['a'][0]:.1f} ± {s['a'][1]:.1f} | {s['b'][0]:.1f} ± {s['b'][1]:.1f} | "
            f"{s['difference'][0]:+.1f} ± {s['difference'][1]:.1f} | {'yes' if s['exceeds_spread'] else 'no'} |"
        )
    return "\n".join(lines)
