"""The loss-spike guard: which losses are spikes, and the history a resumed run carries on."""

from test_lit_module import make_module

from minimath.guards import LossSpikeGuard, Spike
from minimath.lit_module import LOSS_GUARD_KEY

STEADY = [2.0, 2.2] * 10  # mean 2.1, standard deviation 0.1


def test_a_loss_k_deviations_above_the_window_is_a_spike_once_the_history_is_long_enough():
    early = LossSpikeGuard(k=3.0, window=100)
    assert early.check(0, 2.0) is None and early.check(1, 50.0) is None  # 1 step of history: nothing to judge by
    guard = LossSpikeGuard(k=3.0, window=100, action="skip")
    assert [guard.check(step, loss) for step, loss in enumerate(STEADY)] == [None] * 20
    assert guard.check(20, 2.3) is None  # 2 deviations
    spike = guard.check(21, 3.0)
    assert spike == Spike(step=21, loss=3.0, z=spike.z, skip=True) and spike.z > 3.0
    assert guard.spikes == [(21, spike.z)]


def test_the_module_saves_and_restores_the_guards_history(tiny_model_config):
    guard = LossSpikeGuard(k=3.0, window=100)
    for step, loss in enumerate(STEADY):
        guard.check(step, loss)
    checkpoint = {}
    make_module(tiny_model_config, loss_guard=guard).on_save_checkpoint(checkpoint)
    resumed = make_module(tiny_model_config, loss_guard=LossSpikeGuard(k=3.0, window=100))
    resumed.on_load_checkpoint(checkpoint)
    assert checkpoint[LOSS_GUARD_KEY] == resumed.loss_guard.state_dict() == guard.state_dict()
    assert resumed.loss_guard.check(20, 3.0) is not None  # the restored window judges the next step
    assert "loss_guard" not in resumed.hparams
