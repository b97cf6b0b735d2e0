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


def test_an_optimizer_state_keyed_by_name_is_numbered_as_the_optimizer_numbers_it(tiny_model_config):
    """A sharded checkpoint's AdamW state (keyed by parameter name) consolidates to exactly what
    `Optimizer.state_dict()` gives, so a plain single-process run can load it."""
    from minimath.checkpoint import index_optimizer_state
    from minimath.model import Transformer

    model = Transformer(tiny_model_config)
    groups = [{"params": params, "name": name} for name, params, _, _ in model.parameter_groups()]
    optimizer = torch.optim.AdamW(groups)
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    optimizer.step()
    names = {id(p): n for n, p in model.named_parameters()}
    by_index = optimizer.state_dict()
    flat = [p for g in optimizer.param_groups for p in g["params"]]
    by_name = {
        "state": {names[id(flat[i])]: state for i, state in by_index["state"].items()},
        "param_groups": [{**g, "params": [names[id(flat[i])] for i in g["params"]]} for g in by_index["param_groups"]],
    }
    assert index_optimizer_state(by_name) == by_index
