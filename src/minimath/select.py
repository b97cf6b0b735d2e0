"""`python -m minimath.select`: rank seed texts by their influence on a target task and write the selection file
`python -m minimath.synthesize seeds.selection=PATH` reads — JiuZhang3.0 spends its few teacher calls on the texts
that gradient-based influence (LESS, `minimath.influence`) says matter most for the tasks it targets.

    python -m minimath.select ckpt=outputs/.../final.ckpt top_fraction=0.25 out=outputs/select/eq
    python -m minimath.select method=ngram out=outputs/select/eq-ngram     # the cheap baseline, no checkpoint

The candidates are read by the same source mechanism as synthesis (`read_seed_texts`), with the same `seed`, so a
record's `id` (`math_text#12`, `path:lineno`) names the same text there. `method=ngram` scores by TF-IDF cosine of
word n-grams between candidate and reference texts instead of gradients: the baseline influence has to beat.
Outputs in `out`: ranking.jsonl, selected.jsonl, histogram.png, manifest.json.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from minimath.config import CONF_DIR
from minimath.errors import Interrupted, UserError, exit_on_user_error

METHODS = ("influence", "ngram")
RANK_BY = ("mean", "max")


def read_block(block: DictConfig):
    """The texts of a seeds-style block (`conf/seeds/*.yaml`: name, source, count, selection, max_chars,
    on_too_long), exactly as `python -m minimath.synthesize` reads them."""
    from minimath.synthesis import pipeline
    from minimath.synthesize import build

    source = build(block.source, name=str(block.name))
    texts, stats, skipped = pipeline.read_seed_texts(
        source,
        block.count,
        int(block.max_chars),
        pipeline.read_selection(block.get("selection")),
        str(block.on_too_long),
    )
    if not texts:
        raise UserError(f"no texts from the {block.name} source ({stats}): check its source settings")
    return texts, {
        "texts": len(texts),
        "truncated": sum(t.truncated for t in texts),
        "source_stats": stats,
        "skipped": skipped.to_dict(),
    }


def tfidf_vectors(texts: list[str], n: int) -> list[dict]:
    """Unit-length TF-IDF vectors (term -> weight) over word 1..n-grams (`decontaminate.units`: words, CJK
    characters, whole numbers), the IDF smoothed as scikit-learn's: ln((1 + N) / (1 + df)) + 1."""
    from minimath.data.decontaminate import units

    counts = []
    for text in texts:
        u = units(text)
        counts.append(Counter(tuple(u[i : i + k]) for k in range(1, n + 1) for i in range(len(u) - k + 1)))
    df = Counter(term for c in counts for term in c)
    vectors = []
    for c in counts:
        v = {t: tf * (math.log((1 + len(texts)) / (1 + df[t])) + 1) for t, tf in c.items()}
        norm = math.sqrt(sum(w * w for w in v.values())) or 1.0
        vectors.append({t: w / norm for t, w in v.items()})
    return vectors


def ngram_scores(candidates: list[str], reference: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's mean and max TF-IDF cosine to the reference texts (IDF over both sets together)."""
    vectors = tfidf_vectors(candidates + reference, n)
    cands, refs = vectors[: len(candidates)], vectors[len(candidates) :]
    sims = np.array([[sum(w * r.get(t, 0.0) for t, w in c.items()) for r in refs] for c in cands])
    return sims.mean(axis=1), sims.max(axis=1)


def selection_size(total: int, top_k, top_fraction) -> int:
    """How many of `total` ranked texts are selected: exactly one of top_k / top_fraction must be set."""
    if (top_k is None) == (top_fraction is None):
        raise UserError("set exactly one of top_k and top_fraction (the other null)")
    if top_k is not None:
        if int(top_k) < 1:
            raise UserError(f"top_k must be a positive integer, not {top_k}")
        return min(int(top_k), total)
    if not 0 < float(top_fraction) <= 1:
        raise UserError(f"top_fraction must be in (0, 1], not {top_fraction}")
    return max(1, math.ceil(total * float(top_fraction)))


class FeatureProgress:
    """`influence features done/total (cached) | examples/s | ETA` on stderr, every `every_seconds` (in place on a
    terminal)."""

    def __init__(self, total: int, every_seconds: float):
        from minimath.synthesis.progress import duration

        self.total, self.done, self.every, self._duration = total, 0, every_seconds, duration
        self._start = self._shown = time.monotonic()
        self._tty = sys.stderr.isatty()

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.done < self.total and now - self._shown < (0.5 if self._tty else self.every):
            return
        rate = self.done / max(now - self._start, 1e-9)
        line = (
            f"influence features {self.done:,}/{self.total:,} to compute ({100 * self.done / self.total:.0f}%) | "
            f"{rate:.1f} examples/s | ETA {self._duration((self.total - self.done) / rate)}"
        )
        end = "\n" if not self._tty or self.done >= self.total else ""
        sys.stderr.write(("\r" if self._tty else "") + line + end)
        sys.stderr.flush()
        self._shown = now


def influence_scores(cfg: DictConfig, candidates: list[str], reference: list[str]):
    """Gradient-feature cosines of the candidates to the reference set, through the feature cache; returns (mean,
    max, what the manifest records)."""
    from minimath.checkpoint import load_checkpoint
    from minimath.data.shards import sha256_file
    from minimath.eval.generation import inference_objects
    from minimath.influence import (
        FeatureCache,
        FeatureExtractor,
        FeatureSpec,
        cached_features,
        cosine_scores,
        encode_examples,
    )
    from minimath.synthesis.records import text_hash

    if not cfg.ckpt:
        raise UserError(
            "method=influence needs ckpt=PATH (a train.py checkpoint: .../checkpoints/final.ckpt), or use method=ngram"
        )
    path = Path(str(cfg.ckpt))
    checkpoint = load_checkpoint(path)
    model, tokenizer = inference_objects(checkpoint, path)
    spec = FeatureSpec(
        subset=str(cfg.subset),
        d=int(cfg.d),
        seed=int(cfg.projection_seed),
        precondition=str(cfg.precondition),
        max_len=int(cfg.max_len),
        projection=str(cfg.projection),
        chunk_size=int(cfg.chunk_size),
    )
    extractor = FeatureExtractor(model, spec, checkpoint, str(path))
    del checkpoint  # the moments are copied into the extractor; the rest is not needed
    sha = sha256_file(path)
    cache = FeatureCache(
        Path(str(cfg.cache_dir)), spec.cache_key(sha), {"checkpoint": str(path), "checkpoint_sha256": sha, **vars(spec)}
    )
    texts = reference + candidates
    hashes = [text_hash(t) for t in texts]
    examples, tokens, unknown = encode_examples(tokenizer, texts, spec.max_len)
    progress = FeatureProgress(len({h for h in hashes if h not in cache}), float(cfg.progress_every_seconds))
    if int(cfg.batch_size) < 1:
        raise UserError(f"batch_size must be a positive integer, not {cfg.batch_size}")
    try:
        features, computed = cached_features(extractor, cache, hashes, examples, int(cfg.batch_size), progress.add)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{len(cache):,} features are cached in {cache.dir}: rerun the same command to compute only the rest"
        ) from None
    mean, best = cosine_scores(features[len(reference) :], features[: len(reference)])
    settings = {("projection_seed" if k == "seed" else k): v for k, v in vars(spec).items()}  # as conf/select.yaml
    info = {
        "checkpoint": {"path": str(path), "sha256": sha},
        **settings,
        "subset_parameters": extractor.subset.dim,
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "features": {"computed": computed, "cached": len(set(hashes)) - computed, "cache": str(cache.dir)},
        "tokens": tokens,
        "unknown_tokens": unknown,
        "unknown_token_rate": unknown / max(tokens, 1),
        "truncated_to_max_len": sum(len(e) > spec.max_len for e in examples),
    }
    return mean, best, info


def write_histogram(path: Path, scores: np.ndarray, cut: float, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minimath.io import atomic_write

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=min(50, max(10, len(scores) // 4)), color="tab:blue")
    ax.axvline(cut, color="tab:red", linestyle="--", label=f"selection cut ({cut:.4f})")
    ax.set_xlabel(label)
    ax.set_ylabel("texts")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def select(cfg: DictConfig) -> dict:
    """Score, rank and select; writes the outputs and returns the manifest."""
    from minimath.io import atomic_write_bytes, atomic_write_json, jsonl_bytes
    from minimath.synthesis.records import text_hash

    start = time.perf_counter()
    method, rank_by = str(cfg.method), str(cfg.rank_by)
    if method not in METHODS:
        raise UserError(f"method must be one of {list(METHODS)}, not {method!r}")
    if rank_by not in RANK_BY:
        raise UserError(f"rank_by must be one of {list(RANK_BY)}, not {rank_by!r}")
    candidates, candidate_counts = read_block(cfg.candidates)
    reference, reference_counts = read_block(cfg.reference)
    k = selection_size(len(candidates), cfg.top_k, cfg.top_fraction)
    cand_texts, ref_texts = [t.text for t in candidates], [t.text for t in reference]
    if method == "influence":
        mean, best, info = influence_scores(cfg, cand_texts, ref_texts)
    else:
        mean, best = ngram_scores(cand_texts, ref_texts, int(cfg.ngram_n))
        info = {"ngram_n": int(cfg.ngram_n)}
    key = mean if rank_by == "mean" else best
    order = sorted(range(len(candidates)), key=lambda i: (-key[i], i))
    source = str(cfg.candidates.name)
    rows = [
        {
            "id": candidates[i].seed_id,
            "text_hash": text_hash(candidates[i].text),
            "score_mean": round(float(mean[i]), 6),
            "score_max": round(float(best[i]), 6),
            "rank": r + 1,
            "source": source,
        }
        for r, i in enumerate(order)
    ]
    out = Path(str(cfg.out))
    atomic_write_bytes(out / "ranking.jsonl", jsonl_bytes(rows))
    atomic_write_bytes(
        out / "selected.jsonl",
        jsonl_bytes(
            {"id": r["id"], "text_hash": r["text_hash"], "rank": r["rank"], f"score_{rank_by}": r[f"score_{rank_by}"]}
            for r in rows[:k]
        ),
    )
    write_histogram(
        out / "histogram.png",
        key,
        float(key[order[k - 1]]),
        f"{method} score ({rank_by} over {len(reference)} reference texts)",
    )
    manifest = {
        "method": method,
        "rank_by": rank_by,
        **info,
        "seed": int(cfg.seed),
        "candidates": {"name": source, **candidate_counts},
        "reference": {"name": str(cfg.reference.name), **reference_counts},
        "selected": k,
        "cut_score": float(key[order[k - 1]]),
        "seconds": round(time.perf_counter() - start, 2),
    }
    atomic_write_json(out / "manifest.json", manifest)
    print(
        f"select ({method}, rank by {rank_by}): {len(candidates):,} {source} texts scored against "
        f"{len(reference):,} {cfg.reference.name} texts; top {k:,} (score >= {manifest['cut_score']:.4f}) -> "
        f"{out}/selected.jsonl (ranking.jsonl, histogram.png, manifest.json)"
    )
    if method == "influence":
        print(
            f"features: {info['features']['computed']:,} computed, {info['features']['cached']:,} from the cache; "
            f"subset {info['subset']} ({info['subset_parameters']:,} of {info['model_parameters']:,} parameters), "
            f"d={info['d']}, precondition={info['precondition']}; unknown tokens "
            f"{100 * info['unknown_token_rate']:.2f}%; {manifest['seconds']:.1f} s"
        )
    return manifest


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="select")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    select(cfg)


if __name__ == "__main__":
    from minimath.config import run_entry_point

    run_entry_point(main, "select")
