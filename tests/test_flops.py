import pytest
import torch

from minimath.flops import flops_per_token, measured_matmul_peak, mfu, peak_flops
from minimath.model import ModelConfig

MINIMATH_1P5B = ModelConfig(
    vocab_size=151_936, n_layer=18, n_head=16, n_kv_head=16, n_embd=2048, ffn_hidden=8192, max_seq_len=2048
)


def test_flops_per_token_of_the_report_model():
    f = flops_per_token(MINIMATH_1P5B, seq_len=2048)
    assert f.transformer == 6 * 1_208_035_328 + 12 * 18 * 16 * 128 * 2048
    assert f.output_layer == 6 * 151_936 * 2048
    assert f.total == f.transformer + f.output_layer


def test_mfu_separates_the_output_layer():
    f = flops_per_token(MINIMATH_1P5B, seq_len=2048)
    m = mfu(tokens_per_s=1e5, flops=f, peak_flops=989e12)
    assert m["mfu"] == pytest.approx(1e5 * f.transformer / 989e12)
    assert m["mfu_total"] == pytest.approx(m["mfu"] + m["mfu_output_layer"])


def test_peak_settings():
    assert peak_flops(None, "32-true") is None
    assert peak_flops(989, "bf16-mixed") == 989e12
    assert measured_matmul_peak(size=256, seconds=0.05) > 1e8


def test_the_measured_peak_is_the_fastest_window_so_other_work_on_the_cores_does_not_lower_it():
    """Fake clocks that advance 1 ms per reading (a matmul's time); in the disturbed one, readings in the second of
    the five 10 ms windows advance 4 ms, as when another job shares the cores. The peak is the same."""
    from minimath import flops

    def fake_clock(slow_from: float, slow_to: float):
        now = [0.0]

        def clock() -> float:
            value = now[0]
            now[0] += 0.004 if slow_from <= value < slow_to else 0.001
            return value

        return clock

    seconds = 0.01 * flops.PEAK_WINDOWS
    quiet = measured_matmul_peak(size=8, seconds=seconds, clock=fake_clock(1.0, 1.0))
    disturbed = measured_matmul_peak(size=8, seconds=seconds, clock=fake_clock(0.012, 0.024))
    assert disturbed == quiet > 0
    all_slow = measured_matmul_peak(size=8, seconds=seconds, clock=fake_clock(0.0, 1.0))
    assert all_slow < quiet / 3  # slowed readings alone measure about a quarter of the rate


def test_a_measured_peak_is_measured_once_per_machine_and_dtype(monkeypatch, tmp_path):
    from minimath import flops

    monkeypatch.setenv("MINIMATH_CACHE_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(flops, "measured_matmul_peak", lambda dtype: calls.append(dtype) or 2e11)
    assert peak_flops("measure", "32-true") == peak_flops("measure", "32-true") == 2e11
    assert peak_flops("measure", "bf16-mixed") == 2e11
    assert calls == [torch.float32, torch.bfloat16]
