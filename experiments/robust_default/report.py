"""The embedded default's stage-4 held-out table over whole-curriculum seeds, per precision (issue 23).

    python experiments/robust_default/report.py OUT.json PRECISION:SEED:CURRICULUM.json [...]

Each argument names one finished `python train.py seed=SEED ...` run by its `curriculum*.json` (written beside the
run's stages). Writes every per-run value with its provenance to OUT.json and prints, per precision, each seed's
stage-4 row and the mean ± std; `floor` says whether every seed reached the issue's floor (held-out + and − ≥ 90%).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from minimath.hardware import machine_facts
from minimath.io import atomic_write_json
from minimath.provenance import git_commit
from minimath.seeds import mean_std

COLUMNS = [
    "arithmetic[+]",
    "arithmetic[-]",
    "arithmetic[*]",
    "arithmetic[/]",
    "arithmetic",
    "equations",
    "equations[ax+b=c]",
    "equations[a(x+b)=c]",
    "equations[ax+b=cx+d]",
    "equations[system]",
    "word_problems",
    "final_loss",
]
FLOOR = {"arithmetic[+]": 90.0, "arithmetic[-]": 90.0}


def stage4(path: Path) -> dict[str, float]:
    rows = json.loads(path.read_text())
    (row,) = [r for r in rows if int(r["stage"]) == 4]
    missing = [c for c in COLUMNS if c not in row]
    if missing:  # a curriculum evaluated before a column existed: re-run its command to re-evaluate it
        raise SystemExit(f"error: {path} has no {', '.join(missing)}: rerun its curriculum command to re-evaluate")
    return {c: row[c] if c == "final_loss" else 100 * row[c] for c in COLUMNS}


def main(out: Path, runs: list[str]) -> None:
    commit = git_commit()["commit"]
    per_run = []
    for spec in runs:
        precision, seed, path = spec.split(":", 2)
        per_run.append({"precision": precision, "seed": int(seed), "curriculum": path, **stage4(Path(path))})
    for precision in dict.fromkeys(r["precision"] for r in per_run):
        rows = [r for r in per_run if r["precision"] == precision]
        print(f"\n{precision} ({len(rows)} seeds)\n")
        print("| seed | " + " | ".join(COLUMNS) + " |")
        print("|---|" + "---|" * len(COLUMNS))
        for r in rows:
            print(
                f"| {r['seed']} | "
                + " | ".join(f"{r[c]:.1f}" if c != "final_loss" else f"{r[c]:.3f}" for c in COLUMNS)
                + " |"
            )
        cells = []
        for c in COLUMNS:
            m, s = mean_std([r[c] for r in rows])
            cells.append(f"{m:.3f} ± {s:.3f}" if c == "final_loss" else f"{m:.1f} ± {s:.1f}")
        print("| mean ± std | " + " | ".join(cells) + " |")
        met = all(r[c] >= floor for r in rows for c, floor in FLOOR.items())
        print(f"floor (every seed: + and − ≥ 90%): {'met' if met else 'NOT met'}")
    provenance = {"commit": commit, **machine_facts(), "runs": per_run}
    atomic_write_json(out, provenance)
    print(f"\nper-run values: {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
