"""What make_data.py made, per seed and arm: teacher calls and verified answers, the synthesis models' held-out KD
loss, how many of their problems pass verification (M/N), and how much of each arm's data is about the target task
(linear equations). Writes data.json (every per-seed value, with the provenance of the runs) and data.md.

    python experiments/jiuzhang_synthesis/report_data.py outputs/jiuzhang_synthesis --out experiments/jiuzhang_synthesis
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from minimath import provenance
from minimath.io import atomic_write_bytes, atomic_write_json
from minimath.runs import finished_stages
from minimath.seeds import mean_std
from minimath.tb import read_scalars

ARMS = {"random": "b / c", "influence": "d", "ngram": "e"}
SELECTIONS = ("influence", "ngram")
# A problem about the target task: a linear equation in x, as the teacher writes it ("Solve for x: 7x + 3 = 31",
# "... thinks of a number, multiplies it by 7 and adds 3 ...") or as an equation in the question.
TARGET = re.compile(r"solve for x|thinks of a number|解方程|想了一个数|\d\s*x\s*[+\-=]", re.IGNORECASE)


def examples(directory: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(directory.glob("part-*.jsonl")) for line in f.read_text().splitlines()]


def target_share(rows: list[dict]) -> float:
    return sum(bool(TARGET.search(r["input"])) for r in rows) / len(rows) if rows else float("nan")


def kd_loss(run_dir: Path) -> tuple[float, float]:
    """The synthesis model's held-out KD loss (output tokens of unseen prompts): first and last logged value."""
    (stage_dir,) = finished_stages(run_dir, 1)
    values = read_scalars(stage_dir / "tb", "eval/kd_heldout_loss")
    steps = sorted(values)
    return values[steps[0]], values[steps[-1]]


def seed_values(root: Path) -> dict:
    out: dict = {}
    for arm in ARMS:
        teacher = json.loads((root / f"teacher-{arm}" / "manifest.json").read_text())
        synth = json.loads((root / f"synth-{arm}" / "manifest.json").read_text())
        teacher_rows, synth_rows = examples(root / f"teacher-{arm}" / "data"), examples(root / f"synth-{arm}" / "data")
        first, last = kd_loss(root / "runs" / f"kd-{arm}")
        out[arm] = {
            "teacher_calls": teacher["requests"],
            "teacher_verified": len(teacher_rows),
            "teacher_target_share": target_share(teacher_rows),
            "kd_heldout_loss_first": first,
            "kd_heldout_loss_last": last,
            "synth_requests": synth["requests"],
            "synth_parsed": synth["parse"]["parsed"],
            "synth_verified": len(synth_rows),
            "synth_pass_rate": len(synth_rows) / synth["requests"],
            "synth_target_share": target_share(synth_rows),
            "verified_per_teacher_call": len(synth_rows) / teacher["requests"],
            "synth_dropped": synth["verify"]["dropped"],
            "synth_parse_failures": synth["parse"]["counts"],
        }
    chosen = {m: {json.loads(x)["id"] for x in (root / f"select-{m}" / "selected.jsonl").read_text().splitlines()}
              for m in ("influence", "ngram")}  # fmt: skip
    for arm in ("influence", "ngram"):
        out[arm]["selection_overlap"] = len(chosen["influence"] & chosen["ngram"]) / len(chosen[arm])
    return out


def cell(values: list[float], fmt: str) -> str:
    mean, std = mean_std(values)
    return f"{mean:{fmt}} ± {std:{fmt}}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="make_data.py's --out")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()
    seeds = {int(p.name[1:]): seed_values(p) for p in sorted(args.root.glob("s[0-9]*"))}
    stage = next(iter(finished_stages(args.root / f"s{min(seeds)}" / "runs" / "kd-random", 1)))
    rows = [
        ("teacher calls (N)", "teacher_calls", ".0f"),
        ("teacher answers verified", "teacher_verified", ".1f"),
        ("linear-equation share of the teacher's answers", "teacher_target_share", ".2f"),
        ("synthesis model: held-out KD loss before → after", None, None),
        ("synthesis model: texts written for (M requests)", "synth_requests", ".0f"),
        ("… parsed", "synth_parsed", ".1f"),
        ("… verified", "synth_verified", ".1f"),
        ("pass rate (verified / requests)", "synth_pass_rate", ".3f"),
        ("verified synthesized problems per teacher call", "verified_per_teacher_call", ".2f"),
        ("linear-equation share of the verified problems", "synth_target_share", ".2f"),
    ]
    selection_rows = [("texts both selections chose (of N)", "selection_overlap", ".2f")]
    lines = ["| | " + " | ".join(f"N texts: {a} ({ARMS[a]})" for a in ARMS) + " |", "|---" * (len(ARMS) + 1) + "|"]
    for label, key, fmt in rows:
        cells = []
        for arm in ARMS:
            if key is None:
                before = [s[arm]["kd_heldout_loss_first"] for s in seeds.values()]
                after = [s[arm]["kd_heldout_loss_last"] for s in seeds.values()]
                cells.append(f"{cell(before, '.2f')} → {cell(after, '.2f')}")
            else:
                cells.append(cell([float(s[arm][key]) for s in seeds.values()], fmt))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label, key, fmt in selection_rows:
        lines.append(
            f"| {label} | – | " + " | ".join(cell([s[a][key] for s in seeds.values()], fmt) for a in SELECTIONS) + " |"
        )
    table = "\n".join(lines) + f"\n\n(mean ± sample std over seeds {sorted(seeds)}; every per-seed value: data.json)\n"
    atomic_write_json(
        args.out / "data.json",
        {
            "seeds": seeds,
            "provenance (the first synthesis model's training)": provenance.summary(provenance.read(stage)),
        },
    )
    atomic_write_bytes(args.out / "data.md", table.encode())
    print(table)


if __name__ == "__main__":
    main()
