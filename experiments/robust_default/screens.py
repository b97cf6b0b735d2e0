"""Tabulate the stage-4 screens (issue 23) and keep every per-run value with its provenance.

    python experiments/robust_default/screens.py SCREENS.txt OUT.json

SCREENS.txt holds the lines `screen.sh` appended (`NAME seed=S train_s=T {row}`); the settings each NAME stands
for are in SETTINGS below, as the screens were run. Prints one row per screen and writes OUT.json.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from minimath.hardware import machine_facts
from minimath.io import atomic_write_json
from minimath.provenance import git_commit

MIX_80 = (
    "data.stages.4.mix=[{stage:1,share:0.02},{stage:2,share:0.015},{stage:3,share:0.015},"
    "{source:basic_math,share:0.8},{source:equations,share:0.15}]"
)
OPS_9911 = 'data.sources.basic_math.generator.operators=[+,-,+,-,+,-,+,-,+,-,+,-,+,-,+,-,+,-,"*",/]'
SETTINGS = {
    "S1": ["data.stages.4.tokens=1200000", "model.lr=5e-3", "scheduler.decay_fraction=0.5"],
    "S2": ["data.stages.4.tokens=1200000", "model.lr=5e-3", "scheduler.decay_fraction=0.5", MIX_80, OPS_9911],
    "S3": ["data.stages.4.tokens=1200000", "scheduler.decay_fraction=0.5", MIX_80, OPS_9911],
    "S4": [
        "data.stages.4.tokens=1200000",
        "scheduler.decay_fraction=0.5",
        "data.stages.4.batch=1280",
        MIX_80,
        OPS_9911,
    ],
    "S5": ["data.stages.4.tokens=1750000", "scheduler.decay_fraction=0.5", MIX_80, OPS_9911],
    "S6": ["data.stages.4.tokens=2500000"],
}
LINE = re.compile(r"^(\S+) seed=(\d+) train_s=(\d+) (\{.*\})$")
COLUMNS = ["arithmetic[+]", "arithmetic[-]", "arithmetic[*]", "arithmetic[/]", "equations", "final_loss"]


def main(screens: Path, out: Path) -> None:
    runs = []
    for line in screens.read_text().splitlines():
        match = LINE.match(line.strip())
        if not match:
            raise SystemExit(f"{screens}: not a screen line: {line[:80]!r}")
        name, seed, seconds, row = match.groups()
        runs.append(
            {"name": name, "seed": int(seed), "train_s": int(seconds), "overrides": SETTINGS[name], **json.loads(row)}
        )
    print("| screen | seed | stage-4 tokens | train s | + | − | × | ÷ | equations | final loss |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        tokens = r["tokens_seen"] - 602_112  # stages 1-3 of the default end at 602,112 tokens
        cells = [f"{100 * r[c]:.1f}" if c != "final_loss" else f"{r[c]:.3f}" for c in COLUMNS]
        print(f"| {r['name']} | {r['seed']} | {tokens:,} | {r['train_s']} | " + " | ".join(cells) + " |")
    commit = git_commit()["commit"]
    atomic_write_json(out, {"commit": commit, "precision": "32-true", **machine_facts(), "runs": runs})
    print(f"\nper-run values: {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
