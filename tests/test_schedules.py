"""LR schedules keyed by tokens: values at given token counts, the step-equivalence of a constant batch, a batch
change, and the module evaluating them at the stage's tokens."""

import math

import pytest

from minimath.schedules import WSD, Constant, Cosine


def steps(schedule, n, tps):
    return [schedule(k * tps) for k in range(n)]


def test_constant_is_the_base_lr_everywhere():
    assert set(steps(Constant(total_tokens=10 * 64, tokens_per_step=64), 10, 64)) == {1.0}


def test_warmup_in_steps_rises_by_steps_whatever_the_batch():
    for tps in (1, 256, 2560):
        w = WSD(warmup_steps=4, decay_fraction=0.0, total_tokens=100 * tps, tokens_per_step=tps)
        assert steps(w, 6, tps) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert WSD(warmup_tokens=1000, decay_fraction=0.0, total_tokens=10_000, tokens_per_step=250)(0) == 0.25


def test_the_embedded_default_warmup_and_linear_decay():
    """20-step warmup, linear decay to 10% over the last 25% of the stage's steps (conf/scheduler/warmup.yaml)."""
    w = WSD(
        warmup_steps=10, decay_fraction=0.25, shape="linear", final_ratio=0.1, total_tokens=100 * 32, tokens_per_step=32
    )
    values = steps(w, 100, 32)
    assert values[0] == pytest.approx(0.1) and values[9] == 1.0 and values[74] == 1.0  # stable until step 75
    assert values[75] == pytest.approx(1 - 0.9 / 25) and values[99] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))


@pytest.mark.parametrize("shape,mid", [("exp", 0.1**0.5), ("linear", 0.55), ("sqrt", 1 - 0.9 * math.sqrt(0.5))])
def test_wsd_decay_shapes(shape, mid):
    w = WSD(decay_fraction=0.2, shape=shape, final_ratio=0.1, total_tokens=1000, tokens_per_step=10)
    assert w(790) == 1.0  # the last stable step: tokens 790..800
    assert w(890) == pytest.approx(mid)  # halfway through the decay (tokens 800..1000)
    assert w(990) == pytest.approx(0.1)


def test_wsd_keyed_by_tokens_is_unmoved_by_a_batch_change():
    """Half a stage at 100 tokens/step, the rest at 1,000: the LR at each token count is the same schedule."""
    small = WSD(decay_fraction=0.5, shape="linear", final_ratio=0.0, total_tokens=100_000, tokens_per_step=100)
    big = WSD(decay_fraction=0.5, shape="linear", final_ratio=0.0, total_tokens=100_000, tokens_per_step=1000)
    assert small(49_900) == big(49_000) == 1.0  # both steps end at token 50,000: the decay starts after
    assert big(74_000) == pytest.approx(0.5) and small(74_900) == pytest.approx(0.5)


def test_cosine_from_the_base_lr_to_the_final_ratio():
    c = Cosine(warmup_steps=2, final_ratio=0.1, total_tokens=12 * 10, tokens_per_step=10)
    values = steps(c, 12, 10)
    assert values[:2] == [0.5, 1.0] and values[-1] == pytest.approx(0.1)
    assert values[6] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


@pytest.mark.parametrize(
    "kw",
    [
        {"warmup_steps": -1},
        {"decay_fraction": 1.5},
        {"final_ratio": -0.1},
        {"shape": "cubic"},
        {"shape": "exp", "final_ratio": 0.0},
    ],
)
def test_bad_settings_are_errors(kw):
    with pytest.raises(ValueError):
        WSD(**kw)


def test_the_module_evaluates_the_schedule_at_the_stages_tokens(tiny_model_config):
    """After a start from another checkpoint (tokens_seen carried over) and after a resume, the LR is the
    schedule at the tokens trained *in this stage*."""
    from minimath.checkpoint import CheckpointMeta
    from minimath.lit_module import MiniMathModule, module_hparams

    schedule = WSD(decay_fraction=0.5, shape="linear", final_ratio=0.0, total_tokens=1000, tokens_per_step=100)
    module = MiniMathModule(
        **module_hparams(
            tiny_model_config, {"lr": 1.0, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.0}, {"name": "qwen"}
        ),
        lr_schedule=schedule,
        tokens_per_step=100,
    )
    module.tokens_seen = module.stage_start_tokens = 5_000  # started from a checkpoint with 5,000 tokens seen
    sched = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    optimizer = sched.optimizer
    assert optimizer.param_groups[0]["lr"] == 1.0
    module.tokens_seen += 700  # 700 tokens into the stage: the step from 700 to 800 is 60% through the decay
    optimizer.step()
    sched.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.4)
    saved = {}
    module.on_save_checkpoint(saved)
    assert CheckpointMeta.of(saved).stage_start_tokens == 5_000
    fresh = MiniMathModule(
        **module_hparams(
            tiny_model_config, {"lr": 1.0, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.0}, {"name": "qwen"}
        )
    )
    fresh.on_load_checkpoint(saved)
    assert fresh.stage_tokens == 700
    assert CheckpointMeta.of({"tokens_seen": 900, "global_step": 4, "tokens_per_step": 100}).stage_start_tokens == 500
