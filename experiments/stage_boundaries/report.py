"""Loss at the stage boundaries: the default curriculum's first 20 steps of each stage against the previous stage's
final loss — overall, and on the sources the previous stage already trained on (`train_source/<name>`: a new
source's loss is high at first whatever the optimizer does; a knocked-back model shows as the old sources' loss
rising) — and the four stage-3 starts of run.sh; writes results.json and boundaries.png.

    python experiments/stage_boundaries/report.py --run outputs/nano-embedded
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.tb import read_scalars  # noqa: E402

HERE = Path(__file__).parent
VARIANTS = [
    (
        f"boundary-{lr}-moments_{m}",
        f"{'fresh' if m == 'false' else 'stage-2'} moments, {'constant LR' if lr == 'constant' else '20-step warmup'}",
    )
    for m in ("false", "true")
    for lr in ("constant", "warmup")
]


def losses(stage_dir: Path, tag: str = "train/loss") -> list[float]:
    return list(read_scalars(stage_dir / "tb", tag).values())


def source_tags(stage_dir: Path) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(stage_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return sorted(t for t in acc.Tags()["scalars"] if t.startswith("train_source/"))


def old_sources(prev: Path, cur: Path) -> dict:
    """Per source trained in both stages: its mean loss over the previous stage's last 20 logged steps and its
    highest and mean loss over the new stage's first 20 steps."""
    rows = {}
    for tag in sorted(set(source_tags(prev)) & set(source_tags(cur))):
        before, after = losses(prev, tag)[-20:], losses(cur, tag)[:20]
        rows[tag.removeprefix("train_source/")] = {
            "before": sum(before) / len(before),
            "max_after": max(after),
            "mean_after": sum(after) / len(after),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    args = parser.parse_args()
    stages = sorted(args.run.glob("stage[1-4]-bs*"), key=lambda p: p.name)
    curves = {p.name: losses(p) for p in stages}
    rows = []
    for prev, cur in zip(stages, stages[1:]):
        before, first = curves[prev.name][-1], curves[cur.name][:20]
        rows.append(
            {
                "boundary": f"{prev.name} -> {cur.name}",
                "previous_final_loss": before,
                "max_first_20": max(first),
                "margin": max(first) - before,
                "first_20": first,
                "old_sources": old_sources(prev, cur),
            }
        )
    variants, variant_sources = {}, {}
    for name, label in VARIANTS:
        dirs = sorted((args.run.parent / name).glob("stage3-bs*"))
        if dirs:
            variants[label] = losses(dirs[0])[:20]
            variant_sources[label] = old_sources(stages[1], dirs[0])
    stage2_final = curves[stages[1].name][-1] if len(stages) > 1 else None
    (HERE / "results.json").write_text(
        json.dumps(
            {
                "boundaries": rows,
                "stage3_starts": variants,
                "stage3_starts_old_sources": variant_sources,
                "stage2_final_loss": stage2_final,
            },
            indent=1,
        )
        + "\n"
    )

    def old(srcs):
        return "; ".join(
            f"{k} {v['before']:.2f} → {v['mean_after']:.2f} (max {v['max_after']:.2f})" for k, v in srcs.items()
        )

    print(
        "| boundary | previous stage's final loss | highest loss, first 20 steps | margin | sources of the previous "
        "stage: last-20 mean → first-20 mean (max) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['boundary']} | {r['previous_final_loss']:.3f} | {r['max_first_20']:.3f} | {r['margin']:+.3f} | "
            f"{old(r['old_sources'])} |"
        )
    if variants:
        print(
            "\n| stage 3 start (from stage 2's final checkpoint) | loss at steps 1, 5, 10, 20 | highest | stage-2 "
            "sources: last-20 mean → first-20 mean (max) |"
        )
        print("|---|---|---|---|")
        for label, first in variants.items():
            picks = ", ".join(f"{first[i]:.2f}" for i in (0, 4, 9, 19) if i < len(first))
            print(f"| {label} | {picks} | {max(first):.3f} | {old(variant_sources[label])} |")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for name in curves:
        by_tokens = read_scalars(args.run / name / "tb", "train/loss")
        ax1.plot(list(by_tokens), list(by_tokens.values()), label=name, lw=0.8)
    ax1.set(xlabel="tokens seen", ylabel="training loss", title="default curriculum (boundaries)")
    ax1.legend()
    for label, first in variants.items():
        ax2.plot(range(1, len(first) + 1), first, label=label)
    if stage2_final is not None:
        ax2.axhline(stage2_final, color="grey", ls=":", label="stage 2 final loss")
        ax2.axhline(stage2_final + 0.5, color="grey", ls="--", label="+0.5 nats")
    ax2.set(xlabel="stage-3 step", ylabel="training loss", title="first 20 steps of stage 3")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "boundaries.png", dpi=110)


if __name__ == "__main__":
    main()
