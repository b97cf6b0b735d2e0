import pytest

from minimath.seeds import mean_std


def test_mean_std_is_the_mean_and_the_sample_standard_deviation():
    assert mean_std([60.0, 62.0, 64.0]) == (62.0, 2.0)  # sample (n - 1), not population, std
    assert mean_std([1.0, 2.0]) == (1.5, pytest.approx(0.7071, abs=1e-4))
    assert mean_std([5.0]) == (5.0, 0.0)
