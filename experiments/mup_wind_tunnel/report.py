"""Collect the µP wind-tunnel runs (outputs/mup-<sp|mup>-w<width>-lr<lr>-s<seed>/): per parametrisation, width and
LR the loss at the end (mean training loss of the last 10 steps; every sequence is read once, so it is a loss on
unseen data), mean ± std over seeds; the best LR per width and how far it moves across widths. Writes
results.json and tunnel.png (loss against LR per width, one panel per parametrisation).

    python experiments/mup_wind_tunnel/report.py [--outputs outputs]
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
import matplotlib.ticker  # noqa: E402

from minimath.seeds import mean_std  # noqa: E402
from minimath.tb import read_scalars  # noqa: E402

HERE = Path(__file__).parent
NAME = re.compile(r"mup-(sp|mup)-w(\d+)-lr([0-9.e-]+)-s(\d+)$")
TITLES = {"sp": "standard parametrisation", "mup": "µP (base width 64)"}
TAIL = 10
STEPS = 100


def end_loss(run: Path) -> float:
    """The mean of the last steps' losses; a run that stopped early (non-finite losses) counts as diverged (inf)."""
    stage = run / "stage3-bs2.5K"
    losses = list(read_scalars(stage / "tb", "train/loss").values()) if (stage / "tb").is_dir() else []
    if not (stage / "checkpoints" / "final.ckpt").is_file() or len(losses) < STEPS:
        return math.inf
    tail = losses[-TAIL:]
    return sum(tail) / len(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    runs: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))  # param -> width -> lr -> seed -> loss
    for path in sorted(args.outputs.glob("mup-*")):
        match = NAME.match(path.name)
        if match and path.is_dir():
            param, width, lr, seed = match.groups()
            runs[param][int(width)][float(lr)][int(seed)] = end_loss(path)
    if set(runs) != set(TITLES):
        raise SystemExit(f"runs of {sorted(runs)} under {args.outputs}; both sp and mup are needed")
    summary: dict = {}
    for param, by_width in runs.items():
        summary[param] = {}
        for width, by_lr in sorted(by_width.items()):
            seeds = {tuple(sorted(s)) for s in by_lr.values()}
            if len(seeds) != 1 or len(next(iter(seeds))) < 2:
                raise SystemExit(f"{param} width {width}: seeds {sorted(seeds)} differ between LRs or are fewer than 2")
            cells = {
                lr: mean_std(list(s.values())) if all(map(math.isfinite, s.values())) else (math.inf, 0.0)
                for lr, s in sorted(by_lr.items())
            }
            best = min(cells, key=lambda lr: cells[lr][0])
            summary[param][width] = {"seeds": list(next(iter(seeds))), "loss": cells, "best_lr": best}
        bests = [w["best_lr"] for w in summary[param].values()]
        summary[param]["best_lr_spread"] = max(bests) / min(bests)
    (HERE / "results.json").write_text(
        json.dumps(
            {
                param: {
                    str(w): (
                        {
                            "seeds": v["seeds"],
                            "best_lr": v["best_lr"],
                            "loss": {f"{lr:g}": list(c) for lr, c in v["loss"].items()},
                        }
                        if isinstance(v, dict)
                        else v
                    )
                    for w, v in by_width.items()
                }
                for param, by_width in summary.items()
            },
            indent=1,
        )
        + "\n"
    )
    lrs = sorted({lr for by_width in runs.values() for by_lr in by_width.values() for lr in by_lr})
    print("| parametrisation | width | " + " | ".join(f"LR {lr:g}" for lr in lrs) + " | best LR |")
    print("|---|---|" + "---|" * len(lrs) + "---|")
    for param in TITLES:
        for width, v in ((w, v) for w, v in summary[param].items() if isinstance(v, dict)):
            cells = []
            for lr in lrs:
                if lr not in v["loss"]:
                    cells.append("—")
                    continue
                mean, std = v["loss"][lr]
                text = "diverged" if mean == math.inf else f"{mean:.4f} ± {std:.4f}"
                cells.append(f"**{text}**" if lr == v["best_lr"] else text)
            print(f"| {TITLES[param]} | {width} | " + " | ".join(cells) + f" | {v['best_lr']:g} |")
    for param in TITLES:
        print(
            f"{TITLES[param]}: best LR moves by x{summary[param]['best_lr_spread']:g} from the narrowest to the "
            f"widest best"
        )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, param in zip(axes, TITLES):
        for width, v in ((w, v) for w, v in summary[param].items() if isinstance(v, dict)):
            xs = [lr for lr in v["loss"] if math.isfinite(v["loss"][lr][0])]
            ax.errorbar(
                xs,
                [v["loss"][lr][0] for lr in xs],
                yerr=[v["loss"][lr][1] for lr in xs],
                marker="o",
                capsize=3,
                label=f"width {width}",
            )
            ax.plot([v["best_lr"]], [v["loss"][v["best_lr"]][0]], "k*", ms=10)
        ax.set(xscale="log", xlabel="base learning rate", title=TITLES[param])
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs], rotation=30, fontsize=7)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"loss, last {TAIL} steps (unseen data)")
    fig.tight_layout()
    fig.savefig(HERE / "tunnel.png", dpi=110)


if __name__ == "__main__":
    main()
