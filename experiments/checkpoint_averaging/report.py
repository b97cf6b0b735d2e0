"""Collect the checkpoint_averaging runs (outputs/avg-s<seed>/): per arm (the last checkpoint, uniform averages of
the last 2/4/8, EMA 0.8 over the last 8, and a WSD decay branch of the last 50 steps for comparison) the loss on 1,600 never-trained sequences of the stage's stream and the
held-out accuracies, mean ± std over seeds, and each merge's paired difference from the last checkpoint with
whether it beats the seed spread. Writes results.json and averaging.png.

    python experiments/checkpoint_averaging/report.py [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.seeds import compare, heldout_row, mean_std  # noqa: E402

HERE = Path(__file__).parent
ARMS = {
    "last": "the last checkpoint (step 600)",
    "avg2": "uniform mean of the last 2 (steps 575-600)",
    "avg4": "uniform mean of the last 4 (steps 525-600)",
    "avg8": "uniform mean of the last 8 (steps 425-600)",
    "ema8": "EMA 0.8 over the last 8 (steps 425-600)",
    "decay": "not a merge: a WSD decay (exp to 10%) of steps 550-600 branched from the run",
}
COLUMNS = ["stream_loss", "arithmetic", "arithmetic[+]", "arithmetic[-]", "equations"]


def seed_rows(run: Path) -> dict[str, dict[str, float]]:
    losses = json.loads((run / "stream_loss.json").read_text())
    rows = {}
    for arm in ARMS:
        ending = {"last": "bs2.5K/checkpoints/final.ckpt", "decay": "decay-step0000550/checkpoints/final.ckpt"}
        loss = next(v for k, v in losses.items() if k.endswith(ending.get(arm, f"merged/{arm}.ckpt")))
        results = {"last": run / "eval", "decay": run.parent / f"avgdecay-{run.name.split('-')[1]}" / "eval"}.get(
            arm, run / f"eval-{arm}"
        ) / "results.json"
        rows[arm] = {"stream_loss": loss, **heldout_row(results)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    by_seed = {
        int(p.name.rsplit("-s", 1)[1]): seed_rows(p)
        for p in sorted(args.outputs.glob("avg-s*"))
        if (p / "stream_loss.json").is_file()
    }
    if len(by_seed) < 3:
        raise SystemExit(f"{len(by_seed)} finished seed(s) under {args.outputs}, 3 needed")
    per_arm = {arm: {s: rows[arm] for s, rows in by_seed.items()} for arm in ARMS}
    summary = {arm: {c: mean_std([r.get(c, 0.0) for r in per_arm[arm].values()]) for c in COLUMNS} for arm in ARMS}
    versus_last = {arm: compare(per_arm[arm], per_arm["last"], COLUMNS) for arm in ARMS if arm != "last"}
    print("| arm | weights | loss on unseen stream | " + " | ".join(COLUMNS[1:]) + " |")
    print("|---|---|---|" + "---|" * (len(COLUMNS) - 1))
    for arm, s in summary.items():
        cells = " | ".join(f"{s[c][0]:.1f} ± {s[c][1]:.1f}" for c in COLUMNS[1:])
        print(f"| {arm} | {ARMS[arm]} | {s['stream_loss'][0]:.4f} ± {s['stream_loss'][1]:.4f} | {cells} |")
    print()
    print("| merge − last | loss (paired mean ± std) | beyond the spread? | arithmetic | beyond? |")
    print("|---|---|---|---|---|")
    for arm, cmp in versus_last.items():
        loss, arith = cmp["stream_loss"], cmp["arithmetic"]
        print(
            f"| {arm} | {loss['difference'][0]:+.4f} ± {loss['difference'][1]:.4f} | "
            f"{'yes' if loss['exceeds_spread'] else 'no'} | {arith['difference'][0]:+.1f} ± "
            f"{arith['difference'][1]:.1f} | {'yes' if arith['exceeds_spread'] else 'no'} |"
        )
    merges = [a for a in ARMS if a not in ("last", "decay")]
    best = min(merges, key=lambda a: summary[a]["stream_loss"][0])
    against_best = compare(per_arm["decay"], per_arm[best], ["stream_loss"])["stream_loss"]
    versus_last[f"decay_minus_{best}"] = against_best
    print(
        f"\ndecay − {best} (the best merge): loss {against_best['difference'][0]:+.4f} ± "
        f"{against_best['difference'][1]:.4f}, beyond the spread: {'yes' if against_best['exceeds_spread'] else 'no'}"
    )
    (HERE / "results.json").write_text(
        json.dumps(
            {"seeds": sorted(by_seed), "summary": summary, "versus_last": versus_last, "runs": by_seed}, indent=1
        )
        + "\n"
    )
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = list(ARMS)
    for seed, rows in sorted(by_seed.items()):
        ax1.plot(names, [rows[a]["stream_loss"] for a in names], marker="o", label=f"seed {seed}")
        ax2.plot(names, [rows[a].get("arithmetic", 0.0) for a in names], marker="o", label=f"seed {seed}")
    ax1.set(ylabel="loss on 1,600 unseen stage-4 sequences", title="loss")
    ax2.set(ylabel="held-out arithmetic accuracy (%)", title="accuracy")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "averaging.png", dpi=110)


if __name__ == "__main__":
    main()
