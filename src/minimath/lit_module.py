"""The LightningModule: next-token loss, AdamW, LR schedule seam, and metrics logged against tokens seen."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Callable

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
from lightning.pytorch.utilities import rank_zero_warn

from minimath.errors import UserError
from minimath.flops import FlopsPerToken, mfu
from minimath.loss import IGNORE_INDEX, lm_loss
from minimath.model import ModelConfig, Transformer
from minimath.schedules import Constant


def grads_are_sharded(strategy: object) -> bool:
    """Whether each rank holds only its shard of the gradients (FSDP, model-parallel), not a full replica."""
    return isinstance(strategy, (FSDPStrategy, ModelParallelStrategy))


def global_grad_norm(parameters, strategy) -> torch.Tensor:
    """L2 norm of all gradients of the model: under sharding, the square roots of the ranks' summed squares
    (each rank's own norm is of its shard only); replicas (single device, DDP) already hold the whole."""
    local = torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
    if not grads_are_sharded(strategy):
        return local
    return strategy.reduce(local.double().square(), reduce_op="sum").sqrt()


class NonFiniteLossError(UserError):
    """Too many optimizer steps in a row had a NaN/Inf loss."""


class MiniMathModule(L.LightningModule):
    """Wraps `Transformer`; all metrics go to the loggers with `step = tokens seen` (summed over ranks).

    `tokens_seen` counts every input position consumed by an optimizer step across all ranks. It is saved in
    checkpoints and carried across stages, so curves from consecutive runs line up on one axis.
    """

    def __init__(self, model: dict, optim: dict, tokenizer: dict, heldout: dict | None = None,
                 lr_schedule: Callable[[int], float] | None = None,
                 max_nonfinite_steps: int = 5, stage: int = 0, tokens_per_step: int = 0,
                 loss_chunk_bytes: int | None = None):
        super().__init__()
        # The run logs its whole composed config to the loggers itself; this only fills checkpoints.
        self.save_hyperparameters(ignore=["lr_schedule", "max_nonfinite_steps", "stage", "tokens_per_step",
                                          "loss_chunk_bytes"], logger=False)
        self.model_config = ModelConfig(**model)
        self.model = Transformer(self.model_config)
        self.lr_schedule = lr_schedule or Constant()
        self.max_nonfinite_steps = max_nonfinite_steps
        self.stage, self.tokens_per_step = stage, tokens_per_step
        # Memory-lean loss: one chunk's block of logits takes at most this many bytes; None: plain cross-entropy.
        self.loss_chunk_bytes = loss_chunk_bytes
        # For MFU logging (set by the training run): FLOPs per token, and the peak FLOP/s of all devices together.
        self.flops: FlopsPerToken | None = None
        self.peak_flops: float | None = None
        self.tokens_seen = 0
        self.last_loss = float("nan")
        self.initial_optimizer_state: dict | None = None  # moments to load at the start (init_optimizer)
        self._nonfinite_in_a_row = 0
        self._reset_step_stats()
        self._last_step_time: float | None = None

    def _reset_step_stats(self) -> None:
        self._nonfinite = False
        self._loss_sum = torch.zeros((), dtype=torch.float64)
        self._valid_tokens = 0
        self._input_tokens = 0
        n = len(self.source_names)
        self._source_loss = torch.zeros(n, dtype=torch.float64)
        self._source_tokens = torch.zeros(n, dtype=torch.float64)

    @property
    def source_names(self) -> list[str]:
        """Names of the data sources batches are labelled with (`batch["source"]`), from the datamodule."""
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        return list(getattr(datamodule, "source_names", []))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        hidden = self.model.hidden_states(batch["input_ids"])
        total, losses = lm_loss(hidden, self.model.output_weight, batch["targets"], chunk_bytes=self.loss_chunk_bytes)
        valid = batch["targets"] != IGNORE_INDEX
        n_valid = int(valid.sum())
        loss = total / max(n_valid, 1)
        if not torch.isfinite(loss):
            self._nonfinite = True  # the whole optimizer step is dropped in on_before_optimizer_step
            return loss
        self._loss_sum = self._loss_sum.to(loss.device) + losses.sum().double()
        self._valid_tokens += n_valid
        self._input_tokens += batch["input_ids"].numel()
        if "source" in batch and len(self._source_loss):
            source = batch["source"].to(loss.device)
            self._source_loss = self._source_loss.to(loss.device).index_add(0, source, losses.sum(dim=1).double())
            self._source_tokens = self._source_tokens.to(loss.device).index_add(
                0, source, valid.sum(dim=1).double())
        self.log("loss", loss, prog_bar=True, logger=False)
        return loss

    def on_train_start(self) -> None:
        self._reset_step_stats()
        self._last_step_time = time.perf_counter()
        if self.initial_optimizer_state is not None:
            self.trainer.optimizers[0].load_state_dict(self.initial_optimizer_state)
            self.initial_optimizer_state = None

    def _skip_nonfinite_step(self) -> bool:
        """True when any rank saw a NaN/Inf loss in this step: drop every gradient, so AdamW leaves the weights
        and moments untouched; stop after `max_nonfinite_steps` such steps in a row."""
        flag = torch.tensor(float(self._nonfinite), device=self._loss_sum.device)
        if float(self.trainer.strategy.reduce(flag, reduce_op="sum")) == 0:
            self._nonfinite_in_a_row = 0
            return False
        for p in self.parameters():
            p.grad = None
        self._nonfinite_in_a_row += 1
        rank_zero_warn(f"non-finite loss at step {self.trainer.global_step}: step skipped "
                       f"({self._nonfinite_in_a_row} in a row)")
        if self._nonfinite_in_a_row >= self.max_nonfinite_steps:
            raise NonFiniteLossError(
                f"{self._nonfinite_in_a_row} optimizer steps in a row had a NaN/Inf loss (at step "
                f"{self.trainer.global_step}): lower optim.lr or check the data; the last good checkpoint is kept")
        self._reset_step_stats()
        return True

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Runs once per optimizer step, after the last micro-batch's backward and before clipping."""
        if self._skip_nonfinite_step():
            return
        grad_norm = global_grad_norm(self.parameters(), self.trainer.strategy)
        device = self._loss_sum.device
        counts = torch.tensor([self._valid_tokens, self._input_tokens], dtype=torch.float64, device=device)
        stats = torch.cat([self._loss_sum.view(1), counts, self._source_loss.to(device),
                           self._source_tokens.to(device)])
        stats = self.trainer.strategy.reduce(stats, reduce_op="sum")  # one all-reduce for every counter
        n = len(self._source_loss)
        source_loss, source_tokens = stats[3:3 + n], stats[3 + n:]
        step_tokens = int(stats[2])
        self.last_loss = float(stats[0] / stats[1].clamp(min=1))
        self.tokens_seen += step_tokens
        now = time.perf_counter()
        elapsed, self._last_step_time = now - (self._last_step_time or now), now
        if self.trainer.global_step % self.trainer.log_every_n_steps == 0:
            metrics = {
                "train/loss": self.last_loss,
                "train/stage": float(self.stage),
                "train/batch_tokens": float(self.tokens_per_step),
                "train/lr": optimizer.param_groups[0]["lr"],
                "train/grad_norm": float(grad_norm),
                "train/tokens_seen": float(self.tokens_seen),
                "train/tokens_per_s": step_tokens / elapsed if elapsed > 0 else 0.0,
                "train/step": float(self.trainer.global_step),
            }
            metrics.update({f"train_source/{name}": float(source_loss[i] / source_tokens[i])
                            for i, name in enumerate(self.source_names) if source_tokens[i] > 0})
            if self.flops is not None and self.peak_flops and elapsed > 0:
                metrics.update({f"perf/{k}": v for k, v in
                                mfu(step_tokens / elapsed, self.flops, self.peak_flops).items()})
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.tokens_seen)
        self._reset_step_stats()

    def configure_optimizers(self):
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        cfg = self.hparams.optim
        fused = cfg.get("fused", "auto")
        fused = next(self.parameters()).is_cuda if fused == "auto" else bool(fused)  # one kernel for all params
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"], fused=fused or None,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["tokens_seen"] = self.tokens_seen
        checkpoint["last_loss"] = self.last_loss
        checkpoint["stage"] = self.stage
        checkpoint["tokens_per_step"] = self.tokens_per_step

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.tokens_seen = int(checkpoint.get("tokens_seen", 0))
        self.last_loss = float(checkpoint.get("last_loss", float("nan")))


def module_hparams(model_config: ModelConfig, optim: dict, tokenizer_state: dict, heldout: dict | None = None) -> dict:
    """The constructor arguments as plain containers, so checkpoints load with `weights_only=True`. `heldout`: the
    generator configs of the data's held-out sets, so `eval.py` measures what the checkpoint was trained on."""
    if not isinstance(optim, dict) or not isinstance(heldout or {}, dict):
        raise TypeError("optim and heldout must be plain dicts (OmegaConf.to_container) to keep checkpoints "
                        "weights_only-safe")
    return {"model": asdict(model_config), "optim": optim, "tokenizer": tokenizer_state, "heldout": heldout or {}}
