"""Checkpoint averaging: the mean (or EMA) of the weights, in a file eval.py and init_from accept."""

import subprocess
import sys

import pytest
import torch

from minimath.average import average_checkpoints, average_weights
from minimath.checkpoint import AtomicCheckpointIO, CheckpointMeta, load_checkpoint
from minimath.errors import UserError
from minimath.eval.generation import load_for_inference
from minimath.lit_module import module_hparams

from conftest import REPO


def write(path, model_config, scale, step):
    from minimath.model import Transformer

    torch.manual_seed(0)
    state = {f"model.{k}": v * scale for k, v in Transformer(model_config).state_dict().items()}
    ckpt = {
        "state_dict": state,
        "global_step": step,
        "tokens_seen": 100 * step,
        "stage": 2,
        "last_loss": 1.5,
        "hyper_parameters": module_hparams(model_config, {"lr": 1e-3}, {"name": "cl100k_base"}),
        "optimizer_states": [{"state": {}, "param_groups": []}],
    }
    AtomicCheckpointIO().save_checkpoint(ckpt, path)
    return path


def test_weights_are_uniform_or_an_ema_that_sums_to_one():
    assert average_weights(4, None) == [0.25] * 4
    ema = average_weights(3, 0.5)
    assert ema == pytest.approx([0.25, 0.25, 0.5]) and sum(ema) == pytest.approx(1.0)
    with pytest.raises(UserError, match="ema"):
        average_weights(2, 1.0)


@pytest.mark.slow
def test_the_average_is_the_mean_of_the_weights_and_loads_for_eval(tmp_path, tiny_model_config):
    cfg = tiny_model_config
    paths = [write(tmp_path / f"s{i}.ckpt", cfg, scale, i) for i, scale in enumerate((1.0, 2.0, 6.0), start=1)]
    averaged = average_checkpoints(paths)
    first = load_checkpoint(paths[0])["state_dict"]
    for k, v in averaged["state_dict"].items():
        assert torch.allclose(v, first[k] * 3.0, atol=1e-6)  # (1 + 2 + 6) / 3
    assert "optimizer_states" not in averaged and CheckpointMeta.of(averaged).global_step == 3
    out = tmp_path / "avg.ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "minimath.average", f"ckpts=[{','.join(map(str, paths))}]", f"out={out}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    model, _ = load_for_inference(out)  # eval.py's loader (init_from reads the same state_dict)
    key = "tok_embeddings.weight"
    assert torch.allclose(model.state_dict()[key], first[f"model.{key}"] * 3.0, atol=1e-6)


def test_another_architecture_is_a_one_line_error(tmp_path, tiny_model_config):
    from dataclasses import replace

    a = write(tmp_path / "a.ckpt", tiny_model_config, 1.0, 1)
    b = write(tmp_path / "b.ckpt", replace(tiny_model_config, n_embd=64), 1.0, 2)
    with pytest.raises(UserError, match="another architecture"):
        average_checkpoints([a, b])
