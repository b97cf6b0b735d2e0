"""Collect the wsd_vs_cosine runs (outputs/wsd-<arm>-s<seed>/): per arm, the stage-4 tokens, the loss at the end
(mean training loss of the last 10 steps — each batch is read for the first time when its loss is taken, so this
is a loss on unseen data) and the held-out accuracies, mean ± std over seeds; writes results.json and wsd.png.

    python experiments/wsd_vs_cosine/report.py [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.seeds import heldout_row, mean_std  # noqa: E402
from minimath.tb import read_scalars  # noqa: E402

HERE = Path(__file__).parent
ARMS = {
    "stable": "constant (warmup, then the base LR): the stable run",
    "cosine": "cosine to 10%",
    "wsd10": "WSD, exp decay over the last 10% to 10%",
    "branch160": "decay of 102K tokens branched at step 160",
    "branch240": "decay of 102K tokens branched at step 240",
    "branch360": "decay of 102K tokens branched at step 360",
}
COLUMNS = ["arithmetic", "arithmetic[+]", "arithmetic[-]", "equations"]
TAIL = 10


def run_record(run: Path) -> dict:
    stage = next(p for p in sorted(run.glob("stage4-*")) if (p / "checkpoints" / "final.ckpt").is_file())
    losses = read_scalars(stage / "tb", "train/loss")
    lrs = read_scalars(stage / "tb", "train/lr")
    tail = list(losses.values())[-TAIL:]
    return {
        "tokens_seen": max(losses),
        "end_loss": sum(tail) / len(tail),
        "heldout": heldout_row(run / "eval" / "results.json"),
        "curve": {"tokens": list(losses), "loss": list(losses.values()), "lr": list(lrs.values())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    runs = {
        arm: {
            int(p.name.rsplit("-s", 1)[1]): run_record(p)
            for p in sorted(args.outputs.glob(f"wsd-{arm}-s*"))
            if p.is_dir()
        }
        for arm in ARMS
    }
    summary = {}
    for arm, by_seed in runs.items():
        if len(by_seed) < 2:
            raise SystemExit(f"{arm}: {len(by_seed)} seed(s) under {args.outputs}, 2 needed")
        records = list(by_seed.values())
        summary[arm] = {
            "seeds": sorted(by_seed),
            "tokens_seen": sorted({r["tokens_seen"] for r in records}),
            "end_loss": mean_std([r["end_loss"] for r in records]),
            **{c: mean_std([r["heldout"].get(c, 0.0) for r in records]) for c in COLUMNS},
        }
    (HERE / "results.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "runs": {
                    arm: {s: {k: v for k, v in r.items() if k != "curve"} for s, r in by.items()}
                    for arm, by in runs.items()
                },
            },
            indent=1,
        )
        + "\n"
    )
    print(f"| arm | schedule | tokens seen at the end | loss, last {TAIL} steps | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|---|" + "---|" * len(COLUMNS))
    for arm, s in summary.items():
        cells = " | ".join(f"{s[c][0]:.1f} ± {s[c][1]:.1f}" for c in COLUMNS)
        print(
            f"| {arm} | {ARMS[arm]} | {'/'.join(f'{t:,}' for t in s['tokens_seen'])} | "
            f"{s['end_loss'][0]:.4f} ± {s['end_loss'][1]:.4f} | {cells} |"
        )
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    seed = min(runs["stable"])
    for arm in ARMS:
        curve = runs[arm][seed]["curve"]
        smooth = [
            sum(curve["loss"][max(0, i - 9) : i + 1]) / len(curve["loss"][max(0, i - 9) : i + 1])
            for i in range(len(curve["loss"]))
        ]
        ax1.plot(curve["tokens"], smooth, label=arm, lw=1)
        ax2.plot(curve["tokens"], curve["lr"], label=arm, lw=1)
    ax1.set(xlabel="tokens seen", ylabel="training loss (10-step mean)", title=f"stage 4, seed {seed}")
    ax1.set_ylim(top=min(ax1.get_ylim()[1], 1.3))
    ax2.set(xlabel="tokens seen", ylabel="learning rate", title="schedules")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "wsd.png", dpi=110)


if __name__ == "__main__":
    main()
