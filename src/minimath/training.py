"""From a composed Hydra config to a running Lightning fit: the objects `train.py` builds, one function each."""

from __future__ import annotations

import math
from pathlib import Path

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from minimath.checkpoint import load_checkpoint, load_weights, model_state
from minimath.errors import UserError
from minimath.lit_module import MiniMathModule, module_hparams
from minimath.model import ModelConfig, Transformer, count_params
from minimath.tokenizer import CompactTokenizer, TokenizerLike, get_tokenizer, padded_vocab_size

MODEL_FIELDS = ("n_layer", "n_head", "n_kv_head", "n_embd", "ffn_hidden", "max_seq_len", "rope_theta",
                "norm_eps", "init_std", "init_residual")


def world_size(hardware: DictConfig) -> int:
    return int(hardware.devices) * int(hardware.num_nodes)


def accumulation_steps(tokens_per_step: int, micro_batch: int, seq_len: int, n_ranks: int) -> int:
    """Micro-batches per optimizer step so that one step sees exactly `tokens_per_step` tokens."""
    per_micro_step = micro_batch * seq_len * n_ranks
    if tokens_per_step <= 0 or tokens_per_step % per_micro_step:
        raise UserError(
            f"batch of {tokens_per_step} tokens/step is not a multiple of micro_batch×seq_len×world_size = "
            f"{micro_batch}×{seq_len}×{n_ranks} = {per_micro_step}: pick another batch= or hardware.micro_batch"
        )
    return tokens_per_step // per_micro_step


def build_tokenizer(model_cfg: DictConfig, corpus) -> TokenizerLike:
    """The model's vocabulary; a compact one is built from `corpus()` (an iterable of documents)."""
    base = get_tokenizer(str(model_cfg.tokenizer))
    return CompactTokenizer.from_corpus(base, corpus()) if model_cfg.compact_vocab else base


def build_model_config(model_cfg: DictConfig, tokenizer: TokenizerLike) -> ModelConfig:
    rows = model_cfg.vocab_size
    if rows is None:
        rows = padded_vocab_size(tokenizer.vocab_size, int(model_cfg.vocab_pad_multiple))
    if rows < tokenizer.vocab_size:
        raise UserError(f"model.vocab_size={rows} is smaller than the {tokenizer.name} vocabulary "
                        f"({tokenizer.vocab_size}): set model.vocab_size=null to derive it")
    try:
        return ModelConfig(vocab_size=int(rows), **{k: model_cfg[k] for k in MODEL_FIELDS})
    except ValueError as err:
        raise UserError(f"model config: {err}") from None


def report_params(model_config: ModelConfig) -> dict[str, int]:
    """Instantiate on the meta device (no memory) and count; the closed form must agree."""
    with torch.device("meta"):
        model = Transformer(model_config)
    counted = sum(p.numel() for p in model.parameters())
    expected = count_params(model_config)
    assert counted == expected["total"], (counted, expected)
    return expected


def build_trainer(cfg: DictConfig, accumulate: int, max_steps: int) -> L.Trainer:
    loggers = [hydra.utils.instantiate(cfg.logger)]
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    hw = cfg.hardware
    return L.Trainer(
        accelerator=hw.accelerator, devices=hw.devices, num_nodes=hw.num_nodes, strategy=hw.strategy,
        precision=hw.precision, max_steps=max_steps, accumulate_grad_batches=accumulate,
        logger=loggers, callbacks=callbacks, default_root_dir=cfg.paths.output_dir,
        **OmegaConf.to_container(cfg.trainer),
    )


def run(cfg: DictConfig) -> None:
    datamodule = hydra.utils.instantiate(cfg.data)
    tokenizer = build_tokenizer(cfg.model, datamodule.vocab_corpus)
    model_config = build_model_config(cfg.model, tokenizer)
    if cfg.dry_run:
        counts = report_params(model_config)
        print(f"params total={counts['total']} non_embedding={counts['non_embedding']} "
              f"embedding={counts['embedding']}")
        return

    tokens_per_step = int(cfg.batch.tokens_per_step)
    accumulate = accumulation_steps(tokens_per_step, int(cfg.hardware.micro_batch), int(datamodule.seq_len),
                                    world_size(cfg.hardware))
    max_steps = math.ceil(int(cfg.train.max_tokens) / tokens_per_step)
    L.seed_everything(int(cfg.seed), workers=True)
    datamodule.set_tokenizer(tokenizer)
    optim = OmegaConf.to_container(cfg.optim, resolve=True)
    module = MiniMathModule(**module_hparams(model_config, optim, tokenizer.state_dict()),
                            lr_schedule=hydra.utils.instantiate(cfg.scheduler))
    if cfg.init_from:
        load_weights(module.model, model_state(load_checkpoint(cfg.init_from)), str(cfg.init_from))
    trainer = build_trainer(cfg, accumulate, max_steps)
    if trainer.is_global_zero:
        print(f"model {cfg.model.name}: {count_params(model_config)['non_embedding']:,} non-embedding params, "
              f"vocab {tokenizer.vocab_size} -> {model_config.vocab_size} rows; {tokens_per_step:,} tokens/step = "
              f"{accumulate} x {cfg.hardware.micro_batch} x {datamodule.seq_len} x {world_size(cfg.hardware)}; "
              f"{max_steps} steps; output {Path(cfg.paths.output_dir)}")
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(module, datamodule=datamodule)
