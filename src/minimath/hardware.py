"""Hardware facts the presets refer to: the training precision `auto` resolves to on this machine."""

from __future__ import annotations

from minimath.errors import UserError

PRECISIONS = ("auto", "32-true", "bf16-mixed", "bf16-true", "16-mixed")


def cpu_has_native_bf16() -> bool:
    """AMX tiles or AVX512-BF16: bf16 matmuls run in hardware (elsewhere they are emulated, slower than fp32)."""
    import torch  # here, not at import: the config checks that use this module answer before torch loads

    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


def resolve_precision(precision: str, accelerator: str) -> str:
    """`auto`: bf16 autocast (fp32 master weights) where the device computes bf16 natively, else fp32."""
    if precision not in PRECISIONS:
        raise UserError(f"hardware.precision={precision!r}: one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if accelerator == "gpu":
        import torch

        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
