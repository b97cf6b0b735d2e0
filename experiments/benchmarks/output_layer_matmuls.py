"""The fp32 matmul rates behind `gpt4l256`'s output layer on this CPU: square matmuls (what the MFU peak measures)
against the three matmuls of one loss chunk (220 positions: 128 MiB of fp32 logits over the 151,936-row vocabulary),
each timed alone as the fastest of 5 windows (`minimath.flops.op_rate`, as the MFU peak is measured). Each is timed
twice: with contiguous operands of its shape, and as `ChunkedLinearCrossEntropy` calls it (transposed views, the
logits written into a reused block, the weight gradient accumulated in place) — BLAS's speed depends on the layout.

    python experiments/benchmarks/output_layer_matmuls.py
"""

from __future__ import annotations

import torch

from minimath.flops import matmul_rate, op_rate
from minimath.hardware import cpu_name

VOCAB, WIDTH, CHUNK = 151_936, 256, 220


def main() -> None:
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32")
    torch.manual_seed(0)
    w, h = torch.randn(VOCAB, WIDTH), torch.randn(CHUNK, WIDTH)
    block, grad_w = torch.empty(CHUNK, VOCAB), torch.zeros(VOCAB, WIDTH)
    flops = 2 * VOCAB * WIDTH * CHUNK
    rows = {
        "square 2048": ((2048, 2048, 2048), None),
        "logits: chunk x width @ width x vocab": ((CHUNK, WIDTH, VOCAB), lambda: torch.mm(h, w.T, out=block)),
        "weight gradient: vocab x chunk @ chunk x width": ((VOCAB, CHUNK, WIDTH), lambda: grad_w.addmm_(block.T, h)),
        "hidden gradient: chunk x vocab @ vocab x width": ((CHUNK, VOCAB, WIDTH), lambda: block @ w),
    }
    square = None
    for name, (shape, as_the_loss_runs) in rows.items():
        contiguous = matmul_rate(*shape)
        square = square or contiguous
        line = f"{name:48s} {str(shape):22s} contiguous {contiguous / 1e12:.3f} TFLOP/s ({contiguous / square:.0%})"
        if as_the_loss_runs is not None:
            loss = op_rate(as_the_loss_runs, flops)
            line += f", as the loss runs it {loss / 1e12:.3f} ({loss / square:.0%})"
        print(line)


if __name__ == "__main__":
    main()
