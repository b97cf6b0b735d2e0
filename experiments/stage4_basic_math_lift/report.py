"""Collect the lift runs' held-out results (outputs/lift-{with,without}-s<seed>/eval/results.json): mean ± std over
seeds per arm, the difference, whether it exceeds the seed spread; writes results.json and lift.png here.

    python experiments/stage4_basic_math_lift/report.py [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
ARMS = {"with": "stage 4 as configured (arithmetic + equations)", "without": "those tokens replaced by stage-3 data"}
COLUMNS = ["arithmetic", "arithmetic[+]", "arithmetic[-]", "arithmetic[*]", "arithmetic[/]", "equations",
           "word_problems"]


def accuracies(results: Path) -> dict[str, float]:
    tasks = json.loads(results.read_text())["tasks"]
    row = {name: 100 * t["accuracy"] for name, t in tasks.items()}
    row.update({f"{name}[{c}]": 100 * a for name, t in tasks.items() for c, a in t.get("by_category", {}).items()})
    return row


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    runs = {arm: {int(p.parent.parent.name.rsplit("-s", 1)[1]): accuracies(p)
                  for p in sorted(args.outputs.glob(f"lift-{arm}-s*/eval/results.json"))} for arm in ARMS}
    if not runs["with"] or set(runs["with"]) != set(runs["without"]):
        raise SystemExit(f"need both arms for the same seeds; found {({a: sorted(r) for a, r in runs.items()})}")
    seeds = sorted(runs["with"])
    summary = {}
    for column in COLUMNS:
        arms = {arm: spread([runs[arm][s].get(column, 0.0) for s in seeds]) for arm in ARMS}
        diffs = [runs["with"][s].get(column, 0.0) - runs["without"][s].get(column, 0.0) for s in seeds]
        (dm, ds), spread_max = spread(diffs), max(arms["with"][1], arms["without"][1])
        summary[column] = {"with": arms["with"], "without": arms["without"], "difference": (dm, ds),
                           "exceeds_spread": abs(dm) > 2 * spread_max}
    (HERE / "results.json").write_text(json.dumps({"seeds": seeds, "runs": runs, "summary": summary}, indent=1) + "\n")
    print(f"seeds: {seeds}")
    print("| held-out set | with basic math (mean ± std) | without (mean ± std) | difference | beyond 2× the larger "
          "seed std? |")
    print("|---|---|---|---|---|")
    for column, s in summary.items():
        print(f"| {column} | {s['with'][0]:.1f} ± {s['with'][1]:.1f} | {s['without'][0]:.1f} ± {s['without'][1]:.1f} "
              f"| {s['difference'][0]:+.1f} ± {s['difference'][1]:.1f} | {'yes' if s['exceeds_spread'] else 'no'} |")
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.38
    for i, arm in enumerate(ARMS):
        means = [summary[c][arm][0] for c in COLUMNS]
        stds = [summary[c][arm][1] for c in COLUMNS]
        ax.bar([x + (i - 0.5) * width for x in range(len(COLUMNS))], means, width, yerr=stds, capsize=3,
               label=ARMS[arm])
    ax.set_xticks(range(len(COLUMNS)), [c.replace("arithmetic", "arith.") for c in COLUMNS], fontsize=8)
    ax.set(ylabel="held-out accuracy (%)", title=f"stage 4 from one stage-3 checkpoint, {len(seeds)} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "lift.png", dpi=110)


if __name__ == "__main__":
    main()
