"""Influence-feature benchmark: per-example gradient features/s with `vmap` against a Python loop of
`torch.autograd.grad`, side by side in one process (alternating repeats, median reported), for the `nano` and
`small` presets with random weights; and the chunked projection's peak memory at the `small` preset's parameter
count, against the bound `3 × chunk_size × d × 4 bytes + overhead` (the chunk's rows, their float conversion and
their bits) — independent of the parameter count.

    python -m minimath.bench.influence [--examples 16] [--max-len 128] [--d 512] [--repeats 3]

Both variants feed the same projection (`FeatureExtractor.project`), so the difference is the gradient pass alone.
`nano` gets a compact vocabulary of 2,048 rows and subset `all`; `small` (the full Qwen vocabulary, 211M
parameters) gets subsets `last:1` and `lora:8`, since `all` would hold 0.85 GB of gradients per example.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch
from omegaconf import OmegaConf

from minimath.config import CONF_DIR
from minimath.influence import ChunkedProjection, FeatureExtractor, FeatureSpec, _ExampleLoss, batch_tensors
from minimath.model import ModelConfig, Transformer, count_params

MIB = 1 << 20


def preset(name: str, vocab_size: int | None) -> ModelConfig:
    cfg = OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")
    return ModelConfig.from_preset(cfg, vocab_size=vocab_size or int(cfg.vocab_size))


def loop_gradients(extractor: FeatureExtractor, ids: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """What `FeatureExtractor.gradients` returns, one example at a time with `torch.autograd.grad`."""
    loss = _ExampleLoss(extractor.model)
    named = dict(extractor.model.named_parameters())
    params = [named[n] for n in extractor.subset.names]
    rows = [torch.autograd.grad(loss(ids[i : i + 1], targets[i : i + 1]), params) for i in range(len(ids))]
    return {n: torch.stack([r[j] for r in rows]) for j, n in enumerate(extractor.subset.names)}


def throughput(cfg: ModelConfig, subset: str, args) -> tuple[dict[str, dict[str, list[float]]], int]:
    """Per variant: examples/s of the gradient pass alone and of whole features (gradients + projection)."""
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    extractor = FeatureExtractor(model, FeatureSpec(subset=subset, d=args.d, max_len=args.max_len))
    g = torch.Generator().manual_seed(0)
    ids, targets = batch_tensors(
        torch.randint(0, cfg.vocab_size, (args.examples, args.max_len + 1), generator=g).tolist(), args.max_len
    )
    variants = {
        "vmap": lambda: extractor.gradients(ids, targets),
        "loop": lambda: loop_gradients(extractor, ids, targets),
    }
    rates = {v: {"gradients": [], "features": []} for v in variants}
    for grads in variants.values():  # warm-up (vmap's first call traces)
        grads()
    for _ in range(args.repeats):
        for name, grads in variants.items():
            start = time.perf_counter()
            computed = grads()
            middle = time.perf_counter()
            extractor.project(computed, args.examples)
            rates[name]["gradients"].append(args.examples / (middle - start))
            rates[name]["features"].append(args.examples / (time.perf_counter() - start))
    return rates, extractor.subset.dim


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (1 << 12)


def projection_peak(n: int, d: int, chunk_size: int, piece: int) -> tuple[int, float]:
    """Peak RSS above the starting RSS (sampled every 2 ms) while `n` coordinates of one example stream through the
    projection in pieces of `piece`; and the seconds it took."""
    base, peak, done = rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    ChunkedProjection(d, 0, "rademacher", chunk_size).project(
        (torch.randn(1, min(piece, n - i), generator=g) for i in range(0, n, piece)), 1
    )
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return max(peak[0], rss_bytes()) - base, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--small-examples", type=int, default=4)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-repeats", type=int, default=2)
    parser.add_argument("--memory-d", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=65536)
    parser.add_argument("--overhead-mib", type=int, default=32)
    args = parser.parse_args()
    print(
        f"influence features: {torch.get_num_threads()} threads, fp32, max_len {args.max_len}, d {args.d}, "
        f"Rademacher projection, chunk {args.chunk_size:,}"
    )

    small = preset("small", None)
    n = count_params(small)["total"]
    piece = 1 << 20
    peak, seconds = projection_peak(n, args.memory_d, args.chunk_size, piece)
    bound = 3 * args.chunk_size * args.memory_d * 4 + args.overhead_mib * MIB
    print(
        f"projection of {n:,} coordinates (small preset) to d={args.memory_d}, chunk {args.chunk_size:,}: peak RSS "
        f"+{peak / MIB:.1f} MiB, bound 3 x chunk x d x 4 B + {args.overhead_mib} MiB = {bound / MIB:.1f} MiB "
        f"({'within' if peak <= bound else 'OVER'}); {seconds:.1f} s"
    )

    runs = [
        ("nano", preset("nano", 2048), "all", args.examples, args.repeats),
        ("small", small, "last:1", args.small_examples, args.small_repeats),
        ("small", small, "lora:8", args.small_examples, args.small_repeats),
    ]
    for name, cfg, subset, examples, repeats in runs:
        args.examples, args.repeats = examples, repeats
        rates, dim = throughput(cfg, subset, args)
        med = {v: {k: statistics.median(r) for k, r in kinds.items()} for v, kinds in rates.items()}
        print(
            f"{name:5s} subset {subset:7s} ({dim:>10,} coords), {examples:>2} examples | gradients/s: vmap "
            f"{med['vmap']['gradients']:.2f} ({', '.join(f'{r:.2f}' for r in rates['vmap']['gradients'])}), loop "
            f"{med['loop']['gradients']:.2f} ({', '.join(f'{r:.2f}' for r in rates['loop']['gradients'])}), vmap "
            f"{med['vmap']['gradients'] / med['loop']['gradients']:.2f}x | features/s (with the projection): "
            f"vmap {med['vmap']['features']:.2f}, loop {med['loop']['features']:.2f}"
        )


if __name__ == "__main__":
    main()
