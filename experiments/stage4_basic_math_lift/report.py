"""Collect the lift runs' held-out results (outputs/lift-{with,without}-s<seed>/eval/results.json): mean ± std over
seeds per arm, the paired difference and whether it beats the seed spread; writes results.json and lift.png here.

    python experiments/stage4_basic_math_lift/report.py [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.seeds import compare, heldout_row, markdown  # noqa: E402

HERE = Path(__file__).parent
ARMS = {"with": "stage 4 as configured", "without": "arithmetic + equations tokens → stage-3 data"}
COLUMNS = [
    "arithmetic",
    "arithmetic[+]",
    "arithmetic[-]",
    "arithmetic[*]",
    "arithmetic[/]",
    "equations",
    "word_problems",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    runs = {
        arm: {
            int(p.parent.parent.name.rsplit("-s", 1)[1]): heldout_row(p)
            for p in sorted(args.outputs.glob(f"lift-{arm}-s*/eval/results.json"))
        }
        for arm in ARMS
    }
    summary = compare(runs["with"], runs["without"], COLUMNS)
    (HERE / "results.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=1) + "\n")
    print(f"seeds: {sorted(runs['with'])}")
    print(markdown(summary, "with basic math", "without"))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.38
    for i, (key, label) in enumerate((("a", ARMS["with"]), ("b", ARMS["without"]))):
        ax.bar(
            [x + (i - 0.5) * width for x in range(len(COLUMNS))],
            [summary[c][key][0] for c in COLUMNS],
            width,
            yerr=[summary[c][key][1] for c in COLUMNS],
            capsize=3,
            label=label,
        )
    ax.set_xticks(range(len(COLUMNS)), [c.replace("arithmetic", "arith.") for c in COLUMNS], fontsize=8)
    ax.set(ylabel="held-out accuracy (%)", title=f"stage 4 from one stage-3 checkpoint, {len(runs['with'])} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "lift.png", dpi=110)


if __name__ == "__main__":
    main()
