"""The README's tables from the three reports (`python -m minimath.report ... --out experiments/stage_boundaries/
report-s<N>`): per boundary and start, how far each old source's probe loss rose over the first 20 steps (its
highest value minus its value before the first update) and each new source's probe loss after step 20, mean ± sample
std over seeds, with the paired difference from the default start (fresh moments, 20-step warmup) and its p-value.

    python experiments/stage_boundaries/tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
BOUNDARIES = [  # (report, title, sources the previous stage trained on, sources the stage brings)
    ("s2", "stage 1 → 2 (math text enters)", ["general_en", "general_zh"], ["math_text"]),
    (
        "s3",
        "stage 2 → 3 (word problems enter; 256 → 2,560 tokens/step)",
        ["general_en", "general_zh", "math_text"],
        ["word_problems_cot"],
    ),
    (
        "s4",
        "stage 3 → 4 (arithmetic and equations enter)",
        ["general_en", "general_zh", "math_text", "word_problems_cot"],
        ["basic_math", "equations"],
    ),
]
BASELINE = "warmup_fresh"
STARTS = [
    (BASELINE, "fresh moments, 20-step warmup (the default)"),
    ("warmup_moments", "previous moments, 20-step warmup"),
    ("constant_fresh", "fresh moments, full LR from step 1"),
    ("constant_moments", "previous moments, full LR from step 1"),
]


def table(name: str, title: str, old: list[str], new: list[str]) -> str:
    r = json.loads((HERE / f"report-{name}" / "results.json").read_text())
    groups = r["groups"]
    comparisons = {(c["group"], c["metric"]): c for c in r["comparisons"]}
    before: dict[str, dict[str, float]] = {}
    for run in r["runs"]:
        for source in old + new:
            before.setdefault(source, {})[run["seed"]] = run["values"][f"tb/eval/{source}_loss@first"]

    def cell(start: str, metric: str) -> str:
        g = groups[f"arm/stage_boundaries={start}"][metric]
        text = f"{g['mean']:.2f} ± {g['std']:.2f}"
        c = comparisons.get((f"arm/stage_boundaries={start}", metric))
        return text if start == BASELINE or c is None else f"{text} ({c['difference']:+.2f}, p = {c['p']:.2f})"

    lines = [
        f"**{title}.** Probe loss before the first update (seeds 1, 2, 3): "
        + "; ".join(f"{s} {', '.join(f'{before[s][k]:.2f}' for k in sorted(before[s]))}" for s in old + new),
        "",
        "| start | " + " | ".join([f"{s}: rise" for s in old] + [f"{s} after step 20" for s in new]) + " |",
        "|---|" + "---|" * (len(old) + len(new)),
    ]
    for start, what in STARTS:
        cells = [cell(start, f"tb/eval/{s}_loss@rise") for s in old] + [cell(start, f"tb/eval/{s}_loss") for s in new]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    print("\n".join(table(*b) for b in BOUNDARIES))


if __name__ == "__main__":
    main()
