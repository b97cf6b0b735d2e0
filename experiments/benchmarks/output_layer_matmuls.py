"""The fp32 matmul rates behind `gpt4l256`'s output layer on this CPU: square matmuls (what the MFU peak measures)
against the three matmuls of one loss chunk (220 positions: 128 MiB of fp32 logits over the 151,936-row vocabulary),
each timed alone as the fastest of 5 windows (`minimath.flops.measured_matmul_peak`'s method).

    python experiments/benchmarks/output_layer_matmuls.py
"""

from __future__ import annotations

import time

import torch

from minimath.hardware import cpu_name

WINDOWS, SECONDS = 5, 2.0
VOCAB, WIDTH, CHUNK = 151_936, 256, 220


def rate(m: int, k: int, n: int) -> float:
    """FLOP/s of (m x k) @ (k x n), the fastest of WINDOWS windows over SECONDS."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = 0.0
    for _ in range(WINDOWS):
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < SECONDS / WINDOWS:
            a @ b
            runs += 1
        best = max(best, 2 * m * k * n * runs / (time.perf_counter() - start))
    return best


def main() -> None:
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32")
    shapes = {
        "square 2048": (2048, 2048, 2048),
        "logits: chunk x width @ width x vocab": (CHUNK, WIDTH, VOCAB),
        "weight gradient: vocab x chunk @ chunk x width": (VOCAB, CHUNK, WIDTH),
        "hidden gradient: chunk x vocab @ vocab x width": (CHUNK, VOCAB, WIDTH),
    }
    square = None
    for name, shape in shapes.items():
        flops = rate(*shape)
        square = square or flops
        print(f"{name:48s} {shape}: {flops / 1e12:.3f} TFLOP/s ({flops / square:.0%} of square)")


if __name__ == "__main__":
    main()
