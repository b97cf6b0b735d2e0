"""The fp32 matmul rates behind `gpt4l256`'s output layer on this CPU: square matmuls (what the MFU peak measures)
against the three matmuls of one loss chunk (220 positions: 128 MiB of fp32 logits over the 151,936-row vocabulary),
each timed alone as the fastest of 5 windows (`minimath.flops.matmul_rate`, as the MFU peak is measured).

    python experiments/benchmarks/output_layer_matmuls.py
"""

from __future__ import annotations

import torch

from minimath.flops import matmul_rate
from minimath.hardware import cpu_name

VOCAB, WIDTH, CHUNK = 151_936, 256, 220


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
        flops = matmul_rate(*shape)
        square = square or flops
        print(f"{name:48s} {shape}: {flops / 1e12:.3f} TFLOP/s ({flops / square:.0%} of square)")


if __name__ == "__main__":
    main()
