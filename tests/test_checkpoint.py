"""Checkpoints: the architecture check of init_from, and a checkpoint of weights alone."""

from dataclasses import replace

import pytest
import torch

from minimath.checkpoint import CheckpointMeta, check_architecture, model_state, weights_checkpoint
from minimath.errors import UserError


def test_a_mup_checkpoint_is_refused_by_a_model_without_mup(tiny_model_config):
    ckpt = weights_checkpoint(replace(tiny_model_config, mup=True), {})
    with pytest.raises(UserError, match=r"different architecture \(mup is True there, False here\)") as err:
        check_architecture(tiny_model_config, ckpt, "init_from mup.ckpt")
    assert "\n" not in str(err.value)


def test_mup_constants_count_only_under_mup(tiny_model_config):
    wider_base = weights_checkpoint(replace(tiny_model_config, mup_base_width=64), {})
    check_architecture(tiny_model_config, wider_base, "init_from a.ckpt")  # without µP they compute nothing
    mup = replace(tiny_model_config, mup=True)
    with pytest.raises(UserError, match="mup_base_width is 64 there, 256 here"):
        check_architecture(mup, weights_checkpoint(replace(mup, mup_base_width=64), {}), "init_from a.ckpt")


def test_init_and_context_length_may_differ(tiny_model_config):
    theirs = replace(tiny_model_config, init_std=0.01, init_residual="minimath_code", max_seq_len=16)
    check_architecture(tiny_model_config, weights_checkpoint(theirs, {}), "init_from a.ckpt")


def test_a_checkpoint_of_weights_alone_holds_them_and_a_run_not_yet_begun(tiny_model_config):
    state = {"norm.weight": torch.ones(4)}
    ckpt = weights_checkpoint(tiny_model_config, state)
    assert model_state(ckpt).keys() == state.keys()
    meta = CheckpointMeta.of(ckpt)
    assert (meta.stage, meta.tokens_seen, meta.global_step, meta.stage_start_tokens) == (None, 0, 0, 0)
