import pytest
import torch

from minimath.errors import UserError
from minimath.hardware import cpu_has_native_bf16, resolve_precision


def test_explicit_precisions_pass_through():
    for precision in ("32-true", "bf16-mixed", "bf16-true"):
        assert resolve_precision(precision, "cpu") == precision


def test_auto_on_cpu_follows_native_bf16_support(monkeypatch):
    assert resolve_precision("auto", "cpu") == ("bf16-mixed" if cpu_has_native_bf16() else "32-true")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert resolve_precision("auto", "cpu") == "32-true"


def test_unknown_precision_is_a_one_line_error():
    with pytest.raises(UserError, match="hardware.precision='fp8'"):
        resolve_precision("fp8", "cpu")
