"""Collect the seeded batch-size ablation (outputs/batch-ablation-bs{256,2.5K}-s<seed>): held-out accuracy mean ± std
per batch, the paired difference and whether it beats the seed spread, and the stage-3 loss curves; writes
results.json and ablation.png here.

    python experiments/batch_size_ablation/report.py [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.seeds import compare, heldout_row, markdown  # noqa: E402
from minimath.tb import read_scalars  # noqa: E402

HERE = Path(__file__).parent
BATCHES = {"2.5K": "2,560 tokens/step (10×)", "256": "256 tokens/step"}
COLUMNS = ["word_problems", "arithmetic", "equations"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    runs = {
        b: {
            int(p.parent.parent.name.rsplit("-s", 1)[1]): heldout_row(p)
            for p in sorted(args.outputs.glob(f"batch-ablation-bs{b}-s*/eval/results.json"))
        }
        for b in BATCHES
    }
    losses: dict[str, dict[int, float]] = {b: {} for b in BATCHES}  # mean of the last 20 logged steps
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for b, color in zip(BATCHES, ("tab:red", "tab:blue")):
        for seed in runs[b]:
            tb = next((args.outputs / f"batch-ablation-bs{b}-s{seed}").glob("stage3-*/tb"))
            curve = read_scalars(tb, "train/loss")
            losses[b][seed] = sum(list(curve.values())[-20:]) / min(20, len(curve))
            ax_loss.plot(
                list(curve),
                list(curve.values()),
                color=color,
                lw=0.6,
                alpha=0.7,
                label=BATCHES[b] if seed == min(runs[b]) else None,
            )
    for b in BATCHES:
        for seed, row in runs[b].items():
            row["final_loss"] = losses[b][seed]
    summary = compare(runs["2.5K"], runs["256"], COLUMNS + ["final_loss"])
    (HERE / "results.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=1) + "\n")
    print(f"seeds: {sorted(runs['2.5K'])}")
    print(markdown({c: summary[c] for c in COLUMNS}, "2,560 tokens/step", "256 tokens/step"))
    loss = summary["final_loss"]
    print(
        f"final training loss (mean of the last 20 steps): 2,560 tokens/step {loss['a'][0]:.3f} ± {loss['a'][1]:.3f}, "
        f"256 tokens/step {loss['b'][0]:.3f} ± {loss['b'][1]:.3f}, difference {loss['difference'][0]:+.3f} ± "
        f"{loss['difference'][1]:.3f}"
    )
    width = 0.38
    for i, (key, color) in enumerate((("a", "tab:red"), ("b", "tab:blue"))):
        ax_acc.bar(
            [x + (i - 0.5) * width for x in range(len(COLUMNS))],
            [summary[c][key][0] for c in COLUMNS],
            width,
            yerr=[summary[c][key][1] for c in COLUMNS],
            capsize=3,
            color=color,
            label=list(BATCHES.values())[i],
        )
    ax_acc.set_xticks(range(len(COLUMNS)), COLUMNS)
    ax_acc.set(ylabel="held-out accuracy (%)", title="after stage 3 (mean ± std over seeds)")
    ax_loss.set(xlabel="tokens seen", ylabel="train loss", title="stage 3 from the same stage-2 checkpoint")
    ax_loss.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    ax_loss.legend()
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "ablation.png", dpi=100)


if __name__ == "__main__":
    main()
