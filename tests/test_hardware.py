import json

import pytest
import torch

from minimath import hardware
from minimath.errors import UserError
from minimath.hardware import ProbeShape, cpu_has_native_bf16, resolve, resolve_precision

SHAPE = ProbeShape(positions=64, n_embd=16, ffn_hidden=32)


def test_explicit_precisions_pass_through():
    for precision in ("32-true", "bf16-mixed", "bf16-true"):
        assert resolve_precision(precision, "cpu") == precision
        assert resolve_precision(precision, "cpu", SHAPE) == precision


def test_auto_without_a_shape_follows_native_bf16_support(monkeypatch):
    assert resolve_precision("auto", "cpu") == ("bf16-mixed" if cpu_has_native_bf16() else "32-true")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert resolve_precision("auto", "cpu") == "32-true"


def test_unknown_precision_is_a_one_line_error():
    with pytest.raises(UserError, match="hardware.precision='fp8'"):
        resolve_precision("fp8", "cpu")


def fake_probe(monkeypatch, fp32_s: float, bf16_s: float) -> list[bool]:
    calls = []

    def probe(shape, bf16, repeats=5):
        calls.append(bf16)
        return bf16_s if bf16 else fp32_s

    monkeypatch.setattr(hardware, "probe_seconds", probe)
    return calls


@pytest.mark.parametrize(
    "fp32_s,bf16_s,chosen",
    [(1.0, 0.5, "bf16-mixed"), (1.0, 2.0, "32-true"), (1.0, 0.95, "32-true"), (1.0, 1 / 1.1, "bf16-mixed")],
)
def test_auto_on_cpu_takes_the_precision_the_probe_measures_faster(fp32_s, bf16_s, chosen, monkeypatch, tmp_path):
    """bf16 autocast only where it is at least BF16_MARGIN (1.1x) faster than fp32 at the run's shape."""
    monkeypatch.setenv("MINIMATH_CACHE_DIR", str(tmp_path))
    fake_probe(monkeypatch, fp32_s, bf16_s)
    resolved = resolve("auto", "cpu", SHAPE)
    assert resolved.precision == chosen
    assert (
        resolved.reason
        == f"auto: bf16 autocast measured at {fp32_s / bf16_s:.2f}x fp32's speed on this CPU at this shape"
    )


def test_the_probe_runs_once_per_machine_and_shape(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIMATH_CACHE_DIR", str(tmp_path))
    calls = fake_probe(monkeypatch, 1.0, 0.5)
    assert resolve_precision("auto", "cpu", SHAPE) == "bf16-mixed" and calls == [False, True]
    calls.clear()
    assert resolve_precision("auto", "cpu", SHAPE) == "bf16-mixed" and calls == []  # from the cache file
    (entry,) = json.loads((tmp_path / "machine.json").read_text())["precision"].values()
    assert entry["speedup"] == 2.0
    resolve_precision("auto", "cpu", ProbeShape(128, 16, 32))  # another shape is measured
    assert calls == [False, True]


def test_an_unreadable_cache_is_measured_again(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIMATH_CACHE_DIR", str(tmp_path))
    (tmp_path / "machine.json").write_text("{not json")
    calls = fake_probe(monkeypatch, 1.0, 2.0)
    assert resolve_precision("auto", "cpu", SHAPE) == "32-true" and calls == [False, True]
    assert json.loads((tmp_path / "machine.json").read_text())["precision"]  # rewritten whole


def test_the_probe_times_a_real_forward_and_backward():
    assert 0 < hardware.probe_seconds(SHAPE, bf16=False, repeats=2) < 5
    assert 0 < hardware.probe_seconds(SHAPE, bf16=True, repeats=2) < 5


def test_machine_facts_state_the_cpu_its_bf16_support_and_torch(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    facts = hardware.machine_facts()
    assert facts["amx"] is True and facts["avx512_bf16"] is False
    assert facts["torch"] == torch.__version__ and facts["threads"] == torch.get_num_threads()
    assert facts["cpu"] == hardware.cpu_name() and facts["cpu"]
