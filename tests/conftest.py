"""Shared test helpers: config composition into a temp dir and a tiny model config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from minimath.cli import quote_numeric_choices
from minimath.model import ModelConfig

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config `train.py` would see for these command-line overrides, writing under `output_dir`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=quote_numeric_choices(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


# Small enough that a CPU training step takes milliseconds.
TINY_TRAIN_OVERRIDES = [
    "model.n_layer=2", "model.n_embd=32", "model.n_head=2", "model.n_kv_head=2", "model.ffn_hidden=64",
    "model.max_seq_len=32", "hardware.micro_batch=4", "batch.tokens_per_step=128", "train.max_tokens=512",
    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "data.vocab_sample_docs=200",
]


@pytest.fixture
def tiny_model_config() -> ModelConfig:
    return ModelConfig(vocab_size=96, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_hidden=128, max_seq_len=64)
