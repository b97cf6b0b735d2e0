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


def cpu_flags(monkeypatch, amx: bool, avx512_bf16: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)


NATIVE = ("bf16-mixed", "auto: this CPU multiplies bf16 natively (AMX/AVX512-BF16)")


@pytest.mark.parametrize(
    "amx,avx512_bf16,expected",
    [
        (True, True, NATIVE),
        (True, False, NATIVE),
        (False, True, NATIVE),
        (False, False, ("32-true", "auto: no native bf16 on this CPU")),
    ],
)
def test_auto_without_a_shape_follows_native_bf16_support(amx, avx512_bf16, expected, monkeypatch):
    cpu_flags(monkeypatch, amx, avx512_bf16)
    assert cpu_has_native_bf16() is (amx or avx512_bf16)
    assert (resolve("auto", "cpu").precision, resolve("auto", "cpu").reason) == expected
    assert resolve_precision("auto", "cpu") == expected[0]


@pytest.mark.parametrize("bf16_supported,expected", [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_on_a_gpu_is_bf16_autocast_where_supported_else_fp16(bf16_supported, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    monkeypatch.setattr(hardware, "probe_seconds", lambda *a, **k: pytest.fail("a GPU is never probed"))
    assert resolve("auto", "gpu", SHAPE) == hardware.Resolved(expected, "auto: the GPU's bf16 support")


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
    "fp32_s,bf16_s,chosen,speedup",
    [
        (1.0, 0.5, "bf16-mixed", "2.00x"),
        (1.0, 2.0, "32-true", "0.50x"),
        (1.0, 0.95, "32-true", "1.05x"),  # faster, but under the 1.1x margin
        (1.0, 1 / 1.1, "bf16-mixed", "1.10x"),  # exactly the margin
        (0.3, 0.25, "bf16-mixed", "1.20x"),
    ],
)
def test_auto_on_cpu_takes_the_precision_the_probe_measures_faster(
    fp32_s, bf16_s, chosen, speedup, monkeypatch, tmp_path
):
    """bf16 autocast only where it is at least BF16_MARGIN (1.1x) faster than fp32 at the run's shape."""
    monkeypatch.setenv("MINIMATH_CACHE_DIR", str(tmp_path))
    cpu_flags(monkeypatch, amx=True, avx512_bf16=True)  # native bf16 does not decide when the probe measures
    calls = fake_probe(monkeypatch, fp32_s, bf16_s)
    resolved = resolve("auto", "cpu", SHAPE)
    assert calls == [False, True]
    assert resolved.precision == chosen
    assert resolved.reason == f"auto: bf16 autocast measured at {speedup} fp32's speed on this CPU at this shape"


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


CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU 9000 @ 2.00GHz\nflags\t: fpu\n"


class FakeProcFile:
    def __init__(self, text: str | None):
        self.text = text

    def read_text(self) -> str:
        if self.text is None:
            raise OSError("no /proc here")
        return self.text


def test_cpu_name_is_cpuinfos_model_name_else_the_platforms(monkeypatch):
    monkeypatch.setattr(hardware, "Path", lambda path: FakeProcFile(CPUINFO if path == "/proc/cpuinfo" else None))
    assert hardware.cpu_name() == "Test CPU 9000 @ 2.00GHz"
    monkeypatch.setattr(hardware, "Path", lambda path: FakeProcFile(None))
    monkeypatch.setattr(hardware.platform, "processor", lambda: "arm")
    assert hardware.cpu_name() == "arm"
    monkeypatch.setattr(hardware.platform, "processor", lambda: "")
    monkeypatch.setattr(hardware.platform, "machine", lambda: "aarch64")
    assert hardware.cpu_name() == "aarch64"


def test_machine_facts_state_the_cpu_its_bf16_support_and_torch(monkeypatch):
    cpu_flags(monkeypatch, amx=True, avx512_bf16=False)
    monkeypatch.setattr(hardware, "Path", lambda path: FakeProcFile(CPUINFO))
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    monkeypatch.setattr(torch, "__version__", "9.9.9+test")
    assert hardware.machine_facts() == {
        "cpu": "Test CPU 9000 @ 2.00GHz",
        "machine": "x86_64",
        "amx": True,
        "avx512_bf16": False,
        "torch": "9.9.9+test",
        "threads": 3,
    }
