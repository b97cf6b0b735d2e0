"""Read the ablation's TensorBoard events and evaluate both stage-3 branches; write README figures and a plot.

    python experiments/batch_size_ablation/report.py --run outputs/batch-ablation [--items 200]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minimath.checkpoint import load_checkpoint  # noqa: E402
from minimath.eval.generation import GenerationConfig, load_for_inference  # noqa: E402
from minimath.eval.runner import Protocol, run_task  # noqa: E402
from minimath.eval.tasks import as_generator, heldout_task  # noqa: E402
from minimath.runs import finished_stages  # noqa: E402
from minimath.tb import read_scalars  # noqa: E402

TASKS = ("word_problems", "arithmetic", "equations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--items", type=int, default=200)
    args = parser.parse_args()
    branches = finished_stages(args.run, 3)
    if len(branches) < 2:
        sys.exit(f"error: {args.run} needs two finished stage-3 branches, found {sorted(branches)}")
    protocol = Protocol(name="standard", shots={}, extraction="auto", subset=None, seed=0,
                        generation=GenerationConfig(max_new_tokens=96), batch_size=25)
    # the held-out sets of the data the branches trained on (their generators travel in the checkpoints)
    trained = load_checkpoint(next(iter(branches.values())))["hyper_parameters"]["heldout"]
    tasks = [heldout_task(name, args.items, as_generator(trained[name])) for name in TASKS]
    rows = []
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for batch, final in sorted(branches.items(), key=lambda kv: load_checkpoint(kv[1])["tokens_per_step"]):
        ckpt = load_checkpoint(final)
        model, tokenizer = load_for_inference(final)
        row = {"batch": batch, "tokens_per_step": ckpt["tokens_per_step"], "steps": ckpt["global_step"],
               "tokens_seen": ckpt["tokens_seen"], "final_loss": ckpt["last_loss"]}
        row.update({t.name: run_task(model, tokenizer, t, protocol)[0]["accuracy"] for t in tasks})
        rows.append(row)
        loss = read_scalars(final.parent.parent / "tb", "train/loss")
        ax_loss.plot(list(loss), list(loss.values()), label=f"{batch} ({row['tokens_per_step']:,} tokens/step)")
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        ax_acc.bar([j + i * width for j in range(len(TASKS))], [100 * row[t] for t in TASKS], width,
                   label=row["batch"])
    ax_loss.set(xlabel="tokens seen", ylabel="train loss", title="stage 3 from the same stage-2 checkpoint")
    ax_acc.set(xticks=[j + width / 2 for j in range(len(TASKS))], xticklabels=TASKS, ylabel="held-out accuracy (%)")
    ax_loss.legend()
    ax_acc.legend()
    fig.tight_layout()
    out = Path(__file__).parent / "ablation.png"
    fig.savefig(out, dpi=100)
    (Path(__file__).parent / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("| batch | tokens/step | steps | tokens seen | final loss | " + " | ".join(TASKS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(TASKS))
    for r in rows:
        print(f"| {r['batch']} | {r['tokens_per_step']:,} | {r['steps']} | {r['tokens_seen']:,} | "
              f"{r['final_loss']:.3f} | " + " | ".join(f"{100 * r[t]:.1f}%" for t in TASKS) + " |")


if __name__ == "__main__":
    main()
