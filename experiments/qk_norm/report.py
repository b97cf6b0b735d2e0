"""Collect the qk_norm runs (outputs/qk-<arm>-lr<lr>-s<seed>/): per arm and LR the loss at the end (mean training
loss of the last 10 steps, on unseen data), the loss spikes the detector logged, and what the stability monitors
saw — the largest attention logit (max over layers) and the output-logit RMS, at their peak over the run and at
the end — mean ± std over seeds. Writes results.json and monitors.png (the curves of seed 1 at each LR).

    python experiments/qk_norm/report.py [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.seeds import mean_std  # noqa: E402
from minimath.tb import read_scalars  # noqa: E402

HERE = Path(__file__).parent
NAME = re.compile(r"qk-(base|qknorm|zloss|both)-lr([0-9.e-]+)-s(\d+)$")
ARMS = {"base": "baseline", "qknorm": "QK-norm", "zloss": "z-loss 1e-4", "both": "QK-norm + z-loss"}
TAIL = 10
COLUMNS = ("end_loss", "spikes", "peak_attn_logit", "end_attn_logit", "peak_logit_rms", "end_logit_rms")


def max_attn_curve(tb: Path, n_layer: int = 4) -> dict[int, float]:
    layers = [read_scalars(tb, f"stability/layer{i}/max_attn_logit") for i in range(n_layer)]
    return {t: max(layer[t] for layer in layers if t in layer) for t in layers[0]}


def run_record(run: Path) -> dict:
    tb = run / "stage3-bs2.5K" / "tb"
    losses = list(read_scalars(tb, "train/loss").values())
    finished = (run / "stage3-bs2.5K" / "checkpoints" / "final.ckpt").is_file()
    attn, rms = max_attn_curve(tb), read_scalars(tb, "stability/logit_rms")
    tail = losses[-TAIL:]
    return {
        "end_loss": sum(tail) / len(tail) if finished and tail else math.inf,
        "spikes": float(len(read_scalars(tb, "stability/loss_spike"))),
        "peak_attn_logit": max(attn.values()),
        "end_attn_logit": attn[max(attn)],
        "peak_logit_rms": max(rms.values()),
        "end_logit_rms": rms[max(rms)],
        "curves": {"attn": attn, "logit_rms": rms, "loss": read_scalars(tb, "train/loss")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    runs: dict = defaultdict(dict)  # (arm, lr) -> seed -> record
    for path in sorted(args.outputs.glob("qk-*")):
        match = NAME.match(path.name)
        if match and path.is_dir():
            arm, lr, seed = match.groups()
            runs[(arm, float(lr))][int(seed)] = run_record(path)
    lrs = sorted({lr for _, lr in runs})
    summary = {}
    for lr in lrs:
        for arm in ARMS:
            by_seed = runs.get((arm, lr), {})
            if len(by_seed) < 3:
                raise SystemExit(f"{arm} at LR {lr:g}: {len(by_seed)} seed(s), 3 needed")
            summary[f"{arm}@{lr:g}"] = {c: mean_std([r[c] for r in by_seed.values()]) for c in COLUMNS}
    (HERE / "results.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "runs": {
                    f"{arm}@{lr:g}": {s: {k: v for k, v in r.items() if k != "curves"} for s, r in by.items()}
                    for (arm, lr), by in runs.items()
                },
            },
            indent=1,
        )
        + "\n"
    )
    print(
        "| LR | arm | loss, last 10 steps | spikes logged | peak max attention logit | at the end | peak output "
        "logit RMS | at the end |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, s in summary.items():
        arm, lr = key.split("@")
        print(
            f"| {lr} | {ARMS[arm]} | {s['end_loss'][0]:.4f} ± {s['end_loss'][1]:.4f} | "
            f"{s['spikes'][0]:.1f} ± {s['spikes'][1]:.1f} | "
            + " | ".join(f"{s[c][0]:.1f} ± {s[c][1]:.1f}" for c in COLUMNS[2:])
            + " |"
        )
    print()
    for lr in lrs:  # each fix against the baseline, seed by seed
        base = runs[("base", lr)]
        for arm in ("qknorm", "zloss", "both"):
            per_seed = {s: base[s]["end_loss"] - runs[(arm, lr)][s]["end_loss"] for s in sorted(base)}
            gain = mean_std(list(per_seed.values()))
            spread = max(summary[f"base@{lr:g}"]["end_loss"][1], summary[f"{arm}@{lr:g}"]["end_loss"][1])
            print(
                f"LR {lr:g}: baseline − {ARMS[arm]}: {gain[0]:+.3f} ± {gain[1]:.3f} nats (seeds: "
                f"{', '.join(f'{d:+.2f}' for d in per_seed.values())}); beyond 2× the larger std "
                f"({2 * spread:.2f}): {'yes' if abs(gain[0]) > 2 * spread else 'no'}"
            )
    fig, axes = plt.subplots(len(lrs), 3, figsize=(14, 3.6 * len(lrs)), squeeze=False)
    for row, lr in zip(axes, lrs):
        for arm in ARMS:
            curves = runs[(arm, lr)][min(runs[(arm, lr)])]["curves"]
            for ax, key in zip(row, ("loss", "attn", "logit_rms")):
                ax.plot(list(curves[key]), list(curves[key].values()), label=ARMS[arm], lw=1)
        row[0].set(ylabel=f"LR {lr:g}\ntraining loss", xlabel="tokens seen")
        row[1].set(ylabel="max attention logit (all layers)", xlabel="tokens seen")
        row[2].set(ylabel="output logit RMS", xlabel="tokens seen", yscale="log")
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "monitors.png", dpi=100)


if __name__ == "__main__":
    main()
