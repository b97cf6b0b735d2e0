"""Collect round 3 (regimes.sh): per regime, the held-out accuracies mean ± std over seeds, the steps and tokens each
run trained (read from its final checkpoint) and the wall time; writes results.json and regimes.png here.

    python experiments/stage4_arithmetic/report.py [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.checkpoint import load_checkpoint  # noqa: E402
from minimath.seeds import heldout_row, mean_std  # noqa: E402

HERE = Path(__file__).parent
REGIMES = {
    "p3": "+ − × ÷ equal, 1,280-token steps, 2.0M tokens",
    "p4": "+ − only, 2,560-token steps, 2.0M tokens",
    "p5": "+ − only, 1,280-token steps, 3.0M tokens",
    "p6": "+ − only, stage 4 = basic_math alone, 1,024-token steps, 3.4M tokens",
}
COLUMNS = [
    "arithmetic[+]",
    "arithmetic[-]",
    "arithmetic[*]",
    "arithmetic[/]",
    "arithmetic",
    "equations",
    "word_problems",
]


def run_record(run: Path) -> dict:
    ckpt = load_checkpoint(next(run.glob("stage4-*/checkpoints/final.ckpt")))
    return {
        "heldout": heldout_row(run / "eval" / "results.json"),
        "steps": int(ckpt["global_step"]),
        "tokens_seen": int(ckpt.get("tokens_seen", 0)),
        "seconds": int((run / "seconds").read_text()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    runs = {
        name: {
            int(p.name.rsplit("-s", 1)[1]): run_record(p)
            for p in sorted(args.outputs.glob(f"s4a-{name}-s*"))
            if p.is_dir()
        }
        for name in REGIMES
    }
    summary = {}
    for name, by_seed in runs.items():
        if len(by_seed) < 3:
            raise SystemExit(f"{name}: {len(by_seed)} seed(s) found under {args.outputs}, 3 needed")
        rows = [r["heldout"] for r in by_seed.values()]
        summary[name] = {
            "seeds": sorted(by_seed),
            "steps": sorted({r["steps"] for r in by_seed.values()}),
            "tokens_seen": sorted({r["tokens_seen"] for r in by_seed.values()}),
            "seconds": mean_std([r["seconds"] for r in by_seed.values()]),
            **{c: mean_std([row[c] for row in rows]) for c in COLUMNS if all(c in row for row in rows)},
        }
    (HERE / "results.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=1) + "\n")
    print("| run | regime | steps | train + eval time | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|---|" + "---|" * len(COLUMNS))
    for name, s in summary.items():
        cells = [f"{s[c][0]:.1f} ± {s[c][1]:.1f}" if c in s else "—" for c in COLUMNS]
        print(
            f"| {name} | {REGIMES[name]} | {'/'.join(f'{n:,}' for n in s['steps'])} | "
            f"{s['seconds'][0]:.0f} ± {s['seconds'][1]:.0f} s | " + " | ".join(cells) + " |"
        )
    shown = ["arithmetic[+]", "arithmetic[-]", "equations"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(shown)
    for i, column in enumerate(shown):
        xs = [x + (i - (len(shown) - 1) / 2) * width for x in range(len(REGIMES))]
        ax.bar(
            xs,
            [summary[n][column][0] for n in REGIMES],
            width,
            yerr=[summary[n][column][1] for n in REGIMES],
            capsize=3,
            label=column,
        )
    ax.set_xticks(range(len(REGIMES)), list(REGIMES))
    ax.set(
        ylabel="held-out accuracy (%)",
        ylim=(0, 100),
        title="stage 4 from scratch at LR 3e-3, fixed prompts: mean ± std over 3 seeds",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "regimes.png", dpi=110)


if __name__ == "__main__":
    main()
