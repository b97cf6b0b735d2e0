from collections import Counter

import numpy as np
import pytest

from minimath.data.mixture import Mixture, TokenWindows, largest_remainder
from minimath.errors import UserError


def windows(n_tokens, seq_len, source_id, offset=0):
    return TokenWindows([np.arange(offset, offset + n_tokens, dtype=np.uint32)], seq_len, source_id, f"s{source_id}")


def test_largest_remainder():
    assert largest_remainder([0.5, 0.3, 0.2], 10).tolist() == [5, 3, 2]
    counts = largest_remainder([0.383, 0.517, 0.085, 0.015], 1024)
    assert counts.sum() == 1024 and np.allclose(counts / 1024, [0.383, 0.517, 0.085, 0.015], atol=1e-3)


def test_token_windows_share_one_token_and_stay_in_shards():
    w = TokenWindows([np.arange(10, dtype=np.uint32), np.arange(100, 107, dtype=np.uint32)], 3, 0, "s")
    assert len(w) == 3 + 2
    assert w.get(0)[0].tolist() == [0, 1, 2, 3] and w.get(1)[0].tolist() == [3, 4, 5, 6]
    assert w.get(3)[0].tolist() == [100, 101, 102, 103]


def test_measured_shares_match_targets():
    shares = [0.5, 0.3, 0.15, 0.05]
    mix = Mixture([windows(5000, 8, i, 10_000 * i) for i in range(4)], shares, length=1000, seed=1, block=256)
    counts = Counter(mix.get(i)[1] for i in range(20_000))
    measured = np.array([counts[i] for i in range(4)]) / 20_000
    assert np.allclose(measured, shares, atol=0.002)


def test_positions_are_pure_functions_and_sources_cycle_through_epochs():
    def make():
        return Mixture([windows(41, 4, 0), windows(400, 4, 1, 1000)], [0.5, 0.5], length=50, seed=7, block=16)

    a, b = make(), make()
    order = [a.get(i)[0].tolist() for i in range(320)]  # 20 blocks of 16: 160 draws from each source
    assert [b.get(i)[0].tolist() for i in reversed(range(320))] == order[::-1]  # any order, same answers
    small = [tuple(w) for w in order if w[0] < 1000]
    assert len(small) == 160
    assert len(set(small[:10])) == 10  # one full pass over the 10 windows before any repeat
    assert Counter(small) == {w: 16 for w in set(small)}


def test_nested_mixture_keeps_leaf_labels():
    inner = Mixture([windows(800, 4, 0), windows(800, 4, 1, 5000)], [0.5, 0.5], length=100, seed=1)
    outer = Mixture([inner, windows(800, 4, 2, 9000)], [0.25, 0.75], length=100, seed=2)
    counts = Counter(outer.get(i)[1] for i in range(4096))
    assert counts[2] == 3072 and counts[0] + counts[1] == 1024


def test_bad_mixtures():
    with pytest.raises(ValueError, match="positive"):
        Mixture([windows(100, 4, 0)], [0.0], length=10, seed=0)
    with pytest.raises(UserError, match="no shard of 5 tokens .* a smaller model.max_seq_len"):
        windows(4, 4, 0)
