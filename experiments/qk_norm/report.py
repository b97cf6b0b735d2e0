"""The qk_norm sweep's table (on the shared report layer, `minimath.report`): per LR and arm the loss at the end
(mean training loss of the last 10 steps, on unseen data), the loss spikes the guard logged, and what the stability
monitors saw — the largest attention logit (max over layers) and the output-logit RMS, at their peak over the run and
at the end — mean ± sample std over seeds; each arm against the baseline at the same LR by a paired t over seeds.
Writes results.json (every run's values, overrides and provenance) and monitors.png (the curves of seed 1).

    python experiments/qk_norm/report.py SWEEP_DIR        (python train.py -m experiment=qk_norm writes outputs/qk-norm)
"""

from __future__ import annotations

import io
import math
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.io import atomic_write_bytes, atomic_write_json  # noqa: E402
from minimath.report import collect, compare  # noqa: E402
from minimath.seeds import mean_std  # noqa: E402
from minimath.tb import read_all_scalars  # noqa: E402

HERE = Path(__file__).parent
ARM = "arm/qk_norm"
ARMS = {"base": "baseline", "qknorm": "QK-norm", "zloss": "z-loss 1e-4", "both": "QK-norm + z-loss"}
COLUMNS = ("end_loss", "spikes", "peak_attn_logit", "end_attn_logit", "peak_logit_rms", "end_logit_rms")
TAIL = 10


def monitors(tb: Path, finished: bool) -> tuple[dict, dict]:
    scalars = read_all_scalars(tb)
    layers = [v for k, v in scalars.items() if k.startswith("stability/layer") and k.endswith("/max_attn_logit")]
    attn = {t: max(layer[t] for layer in layers if t in layer) for t in layers[0]} if layers else {}
    rms = scalars.get("stability/logit_rms", {})
    losses = list(scalars.get("train/loss", {}).values())
    values = {
        "end_loss": statistics.fmean(losses[-TAIL:]) if finished and len(losses) >= TAIL else math.inf,
        "spikes": float(len(scalars.get("stability/loss_spike", {}))),
        "peak_attn_logit": max(attn.values(), default=math.nan),
        "end_attn_logit": attn[max(attn)] if attn else math.nan,
        "peak_logit_rms": max(rms.values(), default=math.nan),
        "end_logit_rms": rms[max(rms)] if rms else math.nan,
    }
    return values, {"attn": attn, "logit_rms": rms, "loss": scalars.get("train/loss", {})}


def cell(values: list[float], digits: int) -> str:
    if not all(math.isfinite(v) for v in values):
        return "diverged"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def main(root: Path) -> None:
    runs, empty = collect(root, {"experiment": "qk_norm"})
    if empty:
        print(f"{len(empty)} job directories without metrics: {', '.join(empty)}")
    table: dict[tuple[float, str], dict[str, dict]] = {}
    curves = {}
    records = []
    for run in runs:
        lr, arm, seed = float(run.value("optim.lr")), run.value(ARM), run.value("seed")
        values, curve = monitors(run.path / "tb", (run.path / "checkpoints" / "final.ckpt").is_file())
        table.setdefault((lr, arm), {})[seed] = values
        curves[(lr, arm, seed)] = curve
        records.append({"lr": lr, "arm": arm, "seed": seed, "path": str(run.path), "values": values,
                        "overrides": run.overrides, "provenance": run.provenance})  # fmt: skip
    print("| LR | arm | loss, last 10 steps | spikes logged | peak max attention logit | at the end | "
          "peak output logit RMS | at the end |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for lr, arm in sorted(table, key=lambda k: (k[0], list(ARMS).index(k[1]))):
        per_seed = table[(lr, arm)]
        cells = [cell([v[c] for v in per_seed.values()], 4 if c == "end_loss" else 1) for c in COLUMNS]
        print(f"| {lr:g} | {ARMS[arm]} | " + " | ".join(cells) + " |")
    comparisons = []
    print("\nbaseline − arm, loss of the last 10 steps (paired t over seeds):\n")
    for lr in sorted({lr for lr, _ in table}):
        base = {s: v["end_loss"] for s, v in table[(lr, "base")].items()}
        for arm in ("qknorm", "zloss", "both"):
            other = {s: v["end_loss"] for s, v in table[(lr, arm)].items()}
            c = compare(other, base)  # base − arm: positive when the arm ends lower
            per = ", ".join(f"{base[s] - other[s]:+.2f}" for s in sorted(base))
            lo, hi = c["ci95"]
            print(f"LR {lr:g}: baseline − {ARMS[arm]}: {c['difference']:+.3f} nats, 95% interval [{lo:+.3f}, {hi:+.3f}], "
                  f"{c['test']}, p = {c['p']:.3g} (seeds: {per})")  # fmt: skip
            comparisons.append({"lr": lr, "arm": arm, "baseline_minus_arm": c})
    atomic_write_json(HERE / "results.json", {"runs": records, "comparisons": comparisons})
    figure(curves)
    print(f"\nevery run's values and provenance: {HERE / 'results.json'}; curves: {HERE / 'monitors.png'}")


def figure(curves: dict) -> None:
    lrs = sorted({lr for lr, _, _ in curves})
    fig, axes = plt.subplots(len(lrs), 3, figsize=(13, 3.4 * len(lrs)), squeeze=False)
    for row, lr in enumerate(lrs):
        for arm, title in ARMS.items():
            curve = curves.get((lr, arm, "1"))
            if curve is None:
                continue
            for col, key in enumerate(("loss", "attn", "logit_rms")):
                axes[row][col].plot(list(curve[key]), list(curve[key].values()), label=title)
        for col, label in enumerate(("training loss", "max attention logit (max over layers)", "output logit RMS")):
            axes[row][col].set_title(f"LR {lr:g}: {label}", fontsize=9)
            axes[row][col].set_xlabel("tokens seen", fontsize=8)
        axes[row][1].set_yscale("log")
        axes[row][0].legend(fontsize=7)
    fig.suptitle("seed 1 of each arm (every seed's values: results.json)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(HERE / "monitors.png", buffer.getvalue())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
