"""Hardware facts the presets refer to: the training precision `auto` resolves to on this machine.

On a GPU, `auto` is bf16 autocast (fp16 where bf16 is unsupported). On a CPU it is whichever of fp32 and bf16
autocast this machine runs faster at the run's shape, measured by a short probe (`ProbeShape`: the transformer
block's matmuls, forward and backward, at the run's micro-batch of positions): native bf16 (AMX) can be several
times faster than fp32, but a CPU with AVX512-BF16 and no AMX ran the default's shape at about half fp32's speed in
bf16 (experiments/benchmarks/README.md), and a CPU without either emulates bf16. bf16 is chosen only when it is
clearly faster (`BF16_MARGIN`). The probe's result is cached per machine, torch version, thread count and shape in
`$MINIMATH_CACHE_DIR/machine.json` (default `~/.cache/minimath`), so a machine decides once and reruns agree.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minimath.errors import UserError

PRECISIONS = ("auto", "32-true", "bf16-mixed", "bf16-true", "16-mixed")
BF16_MARGIN = 1.1  # bf16 autocast is chosen when it runs at least this many times fp32's speed
CACHE_FILE = "machine.json"  # measurements of this machine: the precision probe, the matmul peak


def cpu_has_native_bf16() -> bool:
    """AMX tiles or AVX512-BF16: bf16 matmuls run in hardware (elsewhere they are emulated, slower than fp32)."""
    import torch  # here, not at import: the config checks that use this module answer before torch loads

    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


@dataclass(frozen=True)
class ProbeShape:
    """What the probe multiplies: `positions` rows (micro-batch × sequence length) through a block's projections
    of width `n_embd` and hidden size `ffn_hidden`."""

    positions: int
    n_embd: int
    ffn_hidden: int

    @property
    def key(self) -> str:
        return f"{self.positions}x{self.n_embd}x{self.ffn_hidden}"


@dataclass(frozen=True)
class Resolved:
    precision: str
    reason: str


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def set_threads(threads: int | None) -> None:
    """torch's intra-op threads: `hardware.threads` (a sweep's parallel jobs share the cores: jobs × threads), or
    torch's default (every core) when unset."""
    if threads is None:
        return
    if int(threads) < 1:
        raise UserError(f"hardware.threads={threads}: a positive number of threads, or null for torch's default")
    import torch

    torch.set_num_threads(int(threads))


def machine_facts() -> dict:
    """What a published figure must state about the machine that made it: the CPU and its bf16 support (AMX,
    AVX512-BF16), torch's version and thread count."""
    import torch

    return {
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "amx": bool(torch.cpu._is_amx_tile_supported()),
        "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def probe_seconds(shape: ProbeShape, bf16: bool, repeats: int = 5) -> float:
    """Best-of-`repeats` seconds of one forward and backward through a block's matmuls (q, k, v, o projections and
    the SwiGLU feed-forward) at `shape`, in fp32 or under bf16 autocast (fp32 weights, as bf16-mixed trains)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    d, h = shape.n_embd, shape.ffn_hidden
    weights = [torch.randn(d, d, generator=generator, requires_grad=True) for _ in range(4)]
    weights += [torch.randn(d, h, generator=generator, requires_grad=True) for _ in range(2)]
    weights += [torch.randn(h, d, generator=generator, requires_grad=True)]
    x = torch.randn(shape.positions, d, generator=generator)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            q, k, v = (x @ w for w in weights[:3])
            attn = (q + k + v) @ weights[3]
            ffn = (torch.nn.functional.silu(attn @ weights[4]) * (attn @ weights[5])) @ weights[6]
            loss = ffn.float().square().mean()
        loss.backward()

    step()  # warm-up: kernels chosen, memory allocated
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def cache_path() -> Path:
    return Path(os.environ.get("MINIMATH_CACHE_DIR") or Path.home() / ".cache" / "minimath") / CACHE_FILE


def machine_key() -> str:
    """What a measurement of this machine depends on: the CPU, torch's version and its thread count."""
    import torch

    return f"{cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def cached_measurement(kind: str, key: str, measure: Callable[[], dict]) -> dict:
    """`measure()` once per machine (`machine_key`) and `key`, kept in the cache file under `kind`; an unreadable
    cache is measured again and rewritten, a read-only one measured every time."""
    from minimath.io import atomic_write_json

    path, entry_key = cache_path(), f"{machine_key()} | {key}"
    try:
        cache = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    section = cache.get(kind) if isinstance(cache.get(kind), dict) else {}
    if isinstance(section.get(entry_key), dict):
        return section[entry_key]
    entry = measure()
    try:
        atomic_write_json(path, {**cache, kind: {**section, entry_key: entry}})
    except OSError:
        pass
    return entry


def measured_cpu_precision(shape: ProbeShape) -> Resolved:
    """fp32 or bf16-mixed, whichever the probe runs faster here (bf16 by `BF16_MARGIN` at least); cached."""

    def measure() -> dict:
        fp32, bf16 = probe_seconds(shape, bf16=False), probe_seconds(shape, bf16=True)
        return {"speedup": fp32 / bf16, "fp32_s": fp32, "bf16_s": bf16}

    speedup = float(cached_measurement("precision", shape.key, measure)["speedup"])
    chosen = "bf16-mixed" if speedup >= BF16_MARGIN else "32-true"
    return Resolved(chosen, f"auto: bf16 autocast measured at {speedup:.2f}x fp32's speed on this CPU at this shape")


def resolve(precision: str, accelerator: str, shape: ProbeShape | None = None) -> Resolved:
    """The training precision and why. `auto`: on a GPU bf16 autocast (fp16 without bf16 support); on a CPU the
    faster of fp32 and bf16 autocast at `shape` (without a shape: bf16 where the CPU multiplies bf16 natively)."""
    if precision not in PRECISIONS:
        raise UserError(f"hardware.precision={precision!r}: one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return Resolved(precision, f"hardware.precision={precision}")
    if accelerator == "gpu":
        import torch

        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return Resolved("bf16-mixed" if bf16 else "16-mixed", "auto: the GPU's bf16 support")
    if shape is not None:
        return measured_cpu_precision(shape)
    native = cpu_has_native_bf16()
    return Resolved(
        "bf16-mixed" if native else "32-true",
        "auto: this CPU multiplies bf16 natively (AMX/AVX512-BF16)" if native else "auto: no native bf16 on this CPU",
    )


def resolve_precision(precision: str, accelerator: str, shape: ProbeShape | None = None) -> str:
    return resolve(precision, accelerator, shape).precision
