"""Does reusing one block of logits across the chunked loss's chunks pay on a CPU? The loss's chunk loop at
`gpt4l256`'s output layer (2,048 positions × width 256, Qwen's 151,936-row vocabulary, fp32, 128 MiB chunks = 220
positions by default), run two ways in one process, alternating, fastest of `--rounds` each:
- fresh: a new (chunk × vocab) tensor per chunk, `h @ w.T` (the loss before this change);
- reused: one block allocated per call, `torch.mm(h, w.T, out=block[:rows])` (`ChunkedLinearCrossEntropy` now).
Both run the same softmax/cross-entropy and the same two gradient matmuls. The rate is the loss's FLOPs (three
matmuls, 6 · positions · vocab · width) per second, against this CPU's measured fp32 matmul peak.

    python experiments/benchmarks/loss_block_reuse.py [--rounds 5] [--chunk-mib 128]
"""

from __future__ import annotations

import argparse
import time

import torch

from minimath.flops import measured_matmul_peak
from minimath.hardware import cpu_name
from minimath.loss import ChunkedLinearCrossEntropy, _softmax_cross_entropy_, chunk_positions

POSITIONS, WIDTH, VOCAB = 2048, 256, 151_936


def fresh(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int) -> None:
    grad_hidden, grad_weight = torch.empty_like(hidden), torch.zeros_like(weight)
    for start in range(0, len(hidden), chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        _, _, grad_logits = _softmax_cross_entropy_(h @ weight.T, t)
        grad_hidden[start : start + chunk] = grad_logits @ weight
        grad_weight.addmm_(grad_logits.T, h)


def reused(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int) -> None:
    # both inputs require grad, so the forward computes both gradients as the fresh loop does (no backward is run)
    ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk, torch.float32, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk-mib", type=int, default=128, help="MiB of fp32 logits per chunk (the bench's 128)")
    args = parser.parse_args()
    torch.manual_seed(0)
    hidden = torch.randn(POSITIONS, WIDTH, requires_grad=True)
    weight = (0.02 * torch.randn(VOCAB, WIDTH)).requires_grad_()
    targets = torch.randint(0, VOCAB, (POSITIONS,))
    chunk = chunk_positions(args.chunk_mib * 2**20, VOCAB, torch.float32)
    peak = measured_matmul_peak()
    flops = 6 * POSITIONS * VOCAB * WIDTH
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32; chunk {chunk} positions")
    print(f"measured fp32 matmul peak {peak / 1e12:.3f} TFLOP/s")
    best = {"fresh": float("inf"), "reused": float("inf")}
    inputs = {"fresh": (hidden.detach(), weight.detach()), "reused": (hidden, weight)}
    for _ in range(args.rounds):
        for name, fn in (("fresh", fresh), ("reused", reused)):
            start = time.perf_counter()
            fn(*inputs[name], targets, chunk)
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"{name:7s} {seconds * 1e3:7.0f} ms  {flops / seconds / peak:.0%} of peak")
    print(f"reused/fresh: {best['fresh'] / best['reused']:.2f}x speed")


if __name__ == "__main__":
    main()
