"""Does gradient influence find the texts of the target task in a planted candidate set?

Candidates: `--half` documents from the target task's own generator (linear equations, train split, a draw
disjoint from the reference's) and `--half` unrelated documents (general text; and, as a harder pool, the math
texts synthesis seeds from). Reference: `--reference` equation documents (train split), a fresh draw per seed. For
each seed (the reference draw and the projection seed) and each arm, precision@k with k = half: the share of the
top half that is planted equations (0.5 = chance).

Arms: influence (`subset=all`, d=512, no preconditioning), influence with AdamW preconditioning, the control —
the reference examples' tokens shuffled within each example, so its gradients are those of noise with the same
token statistics — and the n-gram TF-IDF baseline of `python -m minimath.select method=ngram`.

    python experiments/influence_sanity/run.py --ckpt PATH/final.ckpt

writes results.json beside this file and prints the table.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from minimath.checkpoint import load_checkpoint
from minimath.data.synth.equations import LinearEquationSource
from minimath.data.synth.general import GeneralTextSource
from minimath.data.synth.textbook import TextbookSource
from minimath.eval.generation import inference_objects
from minimath.hardware import cpu_name
from minimath.influence import FeatureExtractor, FeatureSpec, cosine_scores, encode_examples
from minimath.io import atomic_write_json
from minimath.provenance import git_commit
from minimath.select import ngram_scores

HERE = Path(__file__).resolve().parent
POOLS = {"general": GeneralTextSource(), "math_text": TextbookSource()}


def draw(generator, n: int, seed: str) -> list[str]:
    return list(itertools.islice(generator.documents(random.Random(seed)), n))


def features(extractor: FeatureExtractor, examples: list[list[int]], batch: int) -> np.ndarray:
    return np.concatenate([extractor.features(examples[i : i + batch]).numpy() for i in range(0, len(examples), batch)])


def precision_at_half(scores: np.ndarray, related: np.ndarray) -> float:
    k = len(scores) // 2
    top = np.argsort(-scores, kind="stable")[:k]
    return float(related[top].mean())


def commit_label() -> str:
    """The commit the experiment ran at, `+dirty` when the working tree had uncommitted changes."""
    facts = git_commit()
    return facts["commit"][:7] + ("+dirty" if facts["dirty"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--half", type=int, default=32)
    parser.add_argument("--reference", type=int, default=16)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    start = time.perf_counter()
    checkpoint = load_checkpoint(args.ckpt)
    model, tokenizer = inference_objects(checkpoint, args.ckpt)
    equations = LinearEquationSource(problems_per_doc=2, split="train")
    planted = draw(equations, args.half, "planted")
    related = np.array([1] * args.half + [0] * args.half)
    results = {
        "question": "precision@k (k = half) of planted target-task texts among candidates",
        "checkpoint": args.ckpt,
        "commit": commit_label(),
        "cpu": cpu_name(),
        "precision": "fp32",
        "threads": torch.get_num_threads(),
        "settings": {
            "half": args.half,
            "reference": args.reference,
            "d": args.d,
            "max_len": args.max_len,
            "subset": "all",
            "projection": "rademacher",
        },
        "runs": [],
    }
    for seed in args.seeds:
        reference = draw(equations, args.reference, f"reference-{seed}")
        ref_examples, _, _ = encode_examples(tokenizer, reference, args.max_len)
        shuffle = random.Random(f"shuffle-{seed}")
        shuffled = [shuffle.sample(ex, len(ex)) for ex in ref_examples]
        for precondition in ("none", "adam"):
            extractor = FeatureExtractor(
                model,
                FeatureSpec(subset="all", d=args.d, seed=seed, precondition=precondition, max_len=args.max_len),
                checkpoint,
                args.ckpt,
            )
            ref_features = features(extractor, ref_examples, args.batch)
            noise_features = features(extractor, shuffled, args.batch) if precondition == "none" else None
            for pool, generator in POOLS.items():
                candidates = planted + draw(generator, args.half, f"{pool}-unrelated")
                cand_examples, tokens, unknown = encode_examples(tokenizer, candidates, args.max_len)
                cand_features = features(extractor, cand_examples, args.batch)
                arms = {f"influence ({precondition})": ref_features}
                if noise_features is not None:
                    arms["control: shuffled reference"] = noise_features
                for arm, ref in arms.items():
                    mean, best = cosine_scores(cand_features, ref)
                    results["runs"].append(
                        {
                            "seed": seed,
                            "pool": pool,
                            "arm": arm,
                            "precision_at_k_mean": precision_at_half(mean, related),
                            "precision_at_k_max": precision_at_half(best, related),
                            "unknown_token_rate": unknown / tokens,
                        }
                    )
                if precondition == "none":
                    mean, best = ngram_scores(candidates, reference, 2)
                    results["runs"].append(
                        {
                            "seed": seed,
                            "pool": pool,
                            "arm": "ngram TF-IDF baseline",
                            "precision_at_k_mean": precision_at_half(mean, related),
                            "precision_at_k_max": precision_at_half(best, related),
                        }
                    )
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
    table = []
    for (pool, arm), runs in itertools.groupby(
        sorted(results["runs"], key=lambda r: (r["pool"], r["arm"])), key=lambda r: (r["pool"], r["arm"])
    ):
        runs = list(runs)
        row = {"pool": pool, "arm": arm}
        for score in ("mean", "max"):
            values = [r[f"precision_at_k_{score}"] for r in runs]
            row[score] = {
                "mean": statistics.mean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values,
            }
        table.append(row)
    results["table"], results["seconds"] = table, round(time.perf_counter() - start, 1)
    atomic_write_json(HERE / "results.json", results)
    print(f"CPU {results['cpu']}, {results['threads']} threads, fp32; {results['seconds']} s")
    print("| unrelated half | arm | precision@k (score_mean) | precision@k (score_max) |")
    print("|---|---|---|---|")
    for row in table:
        print(
            f"| {row['pool']} | {row['arm']} | {row['mean']['mean']:.3f} ± {row['mean']['std']:.3f} | "
            f"{row['max']['mean']:.3f} ± {row['max']['std']:.3f} |"
        )


if __name__ == "__main__":
    main()
