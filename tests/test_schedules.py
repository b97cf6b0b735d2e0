import pytest

from minimath.schedules import Constant, Warmup


def test_constant_is_the_base_lr_everywhere():
    assert {Constant(total_steps=10)(s) for s in range(10)} == {1.0}


def test_warmup_then_constant():
    w = Warmup(4, total_steps=100)
    assert [w(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0] and w(99) == 1.0
    assert Warmup(0, total_steps=5)(0) == 1.0


def test_warmup_and_linear_decay_to_the_final_ratio_over_the_stages_last_steps():
    w = Warmup(10, decay_fraction=0.25, final_ratio=0.1, total_steps=100)
    assert w(0) == pytest.approx(0.1) and w(9) == 1.0 and w(74) == 1.0  # stable until the last 25 steps
    assert w(75) == pytest.approx(1 - 0.9 / 25) and w(99) == pytest.approx(0.1)
    assert all(w(s) >= w(s + 1) for s in range(10, 99))


@pytest.mark.parametrize("kw", [{"warmup_steps": -1}, {"warmup_steps": 1, "decay_fraction": 1.5},
                                {"warmup_steps": 1, "final_ratio": -0.1}])
def test_bad_settings_are_errors(kw):
    with pytest.raises(ValueError):
        Warmup(**kw)
