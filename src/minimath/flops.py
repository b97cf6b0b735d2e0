"""Training FLOPs per token and model FLOPs utilisation (MFU).

Per token, forward + backward (PaLM appendix B): 6·N for the non-embedding weights plus 12·L·H·Q·T for
attention scores and values (L layers, H heads, Q head size, T sequence length). The tied output layer's
6·V·d is counted separately: with Qwen's 151,936-row vocabulary it can exceed the whole transformer of a small
model, and folding it in would make a high MFU look like transformer work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from minimath.model import ModelConfig, count_params


@dataclass
class FlopsPerToken:
    transformer: float  # 6·N + 12·L·H·Q·T
    output_layer: float  # 6·V·d

    @property
    def total(self) -> float:
        return self.transformer + self.output_layer


def flops_per_token(config: ModelConfig, seq_len: int) -> FlopsPerToken:
    n = count_params(config)["non_embedding"]
    attention = 12 * config.n_layer * config.n_head * config.head_dim * seq_len
    return FlopsPerToken(transformer=6 * n + attention, output_layer=6 * config.vocab_size * config.n_embd)


def mfu(tokens_per_s: float, flops: FlopsPerToken, peak_flops: float) -> dict[str, float]:
    """MFU of the transformer alone, of the output layer alone, and of both."""
    return {
        "mfu": tokens_per_s * flops.transformer / peak_flops,
        "mfu_output_layer": tokens_per_s * flops.output_layer / peak_flops,
        "mfu_total": tokens_per_s * flops.total / peak_flops,
    }


PEAK_WINDOWS = 5  # timing windows of the matmul peak; the fastest is kept


def op_rate(op, flops: float, seconds: float = 2.0, clock=time.perf_counter) -> float:
    """FLOP/s of `op()` (which does `flops` FLOPs) on this CPU, the fastest of `PEAK_WINDOWS` windows (`seconds` in
    all): other work on the cores only lowers a window's rate."""
    op()  # warm up
    best = 0.0
    for _ in range(PEAK_WINDOWS):
        runs, start = 0, clock()
        while clock() - start < seconds / PEAK_WINDOWS:
            op()
            runs += 1
        best = max(best, flops * runs / (clock() - start))
    return best


def matmul_rate(
    m: int, k: int, n: int, dtype: torch.dtype = torch.float32, seconds: float = 2.0, clock=time.perf_counter
) -> float:
    """FLOP/s of (m x k) @ (k x n) on this CPU, contiguous operands (`op_rate`)."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    return op_rate(lambda: a @ b, 2 * m * k * n, seconds, clock)


def measured_matmul_peak(
    dtype: torch.dtype = torch.float32, size: int = 2048, seconds: float = 2.0, clock=time.perf_counter
) -> float:
    """FLOP/s of large square matmuls on this CPU: the reference for MFU where no vendor peak applies. A peak is a
    maximum, so the fastest window counts (`matmul_rate`): one window, measured while another job ran, was cached at
    0.15 TFLOP/s on a CPU that runs these matmuls at 0.23, and put every later MFU figure of that machine 1.6x too
    high."""
    return matmul_rate(size, size, size, dtype, seconds, clock)


def peak_flops(setting: float | str | None, precision: str) -> float | None:
    """`hardware.peak_tflops`: a number (vendor dense peak, e.g. 989 for H100/H200 bf16), `measure` (this CPU's
    matmul rate in the run's precision, measured once per machine), or null (no MFU)."""
    if setting is None:
        return None
    if setting == "measure":  # once per machine and dtype (minimath.hardware's cache): every run's MFU on one scale
        from minimath.hardware import cached_measurement

        dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float32
        key = f"{dtype} | fastest of {PEAK_WINDOWS} windows"  # entries of the one-window measurement are not reused
        return cached_measurement("matmul_peak", key, lambda: {"flops": measured_matmul_peak(dtype)})["flops"]
    return float(setting) * 1e12
