"""The metrics logged against tokens seen on every logged optimizer step: loss, LR, gradient norm, throughput,
MFU and per-source loss."""

from __future__ import annotations

import time

import lightning as L
import torch

from minimath import log
from minimath.callbacks.seam import TrainingState
from minimath.callbacks.shared import StepBoundary, grad_norm
from minimath.flops import flops_per_token, mfu, peak_flops


class TrainingMetrics(StepBoundary, L.Callback):
    """Every `log_every_n_steps` optimizer steps, with `step = tokens seen` (summed over ranks):
    `train/{loss,lr,grad_norm,tokens_seen,tokens_per_s,step,stage,batch_tokens}`, `train_source/<name>` (mean loss
    per token of each source in the step; `source_names[i]` names the label `i` of `batch["source"]`) and, with a
    peak (`hardware.peak_tflops`: TFLOP/s, `measure`, or null), `perf/{mfu,mfu_output_layer,mfu_total}` from the
    model's FLOPs per token at its context length and the run's precision, over all devices."""

    def __init__(
        self, source_names: list[str] | None = None, log_every_n_steps: int = 1, peak_tflops: float | str | None = None
    ):
        self.source_names = list(source_names or [])
        self.log_every_n_steps = int(log_every_n_steps)
        self.peak_tflops = peak_tflops
        self._flops = self._peak = None
        self._reset()

    def _reset(self) -> None:
        n = len(self.source_names)
        self._source_loss = torch.zeros(n, dtype=torch.float64)
        self._source_tokens = torch.zeros(n, dtype=torch.float64)

    def setup(self, trainer: L.Trainer, pl_module: TrainingState, stage: str) -> None:
        self._flops = flops_per_token(pl_module.model_config, pl_module.model_config.max_seq_len)
        peak = peak_flops(self.peak_tflops, str(trainer.precision))
        self._peak = peak * trainer.world_size if peak else None

    def on_train_start(self, trainer: L.Trainer, pl_module: TrainingState) -> None:
        self._reset()
        self._start_counting(trainer)
        self._tokens, self._time = pl_module.tokens_seen, time.perf_counter()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: TrainingState, optimizer) -> None:
        """Before the module's guards and the clipping: the LR this step uses and the unclipped gradient norm."""
        group = optimizer.param_groups[0]  # the base LR of the schedule (µP's hidden matrices train at lr/m)
        self._lr = group["lr"] / group.get("lr_mult", 1.0)
        self._grad_norm = grad_norm(pl_module.parameters(), trainer.strategy)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: TrainingState, outputs, batch, batch_idx) -> None:
        if len(self.source_names) and "source" in batch and outputs is not None:
            device = outputs["sequence_loss"].device
            source = batch["source"].to(device)
            self._source_loss = self._source_loss.to(device).index_add(0, source, outputs["sequence_loss"].double())
            self._source_tokens = self._source_tokens.to(device).index_add(
                0, source, outputs["sequence_tokens"].double()
            )
        if not self._step_ended(trainer):
            return  # a micro-batch inside an optimizer step (gradient accumulation)
        step = trainer.global_step - 1
        now = time.perf_counter()
        elapsed, self._time = now - self._time, now
        step_tokens, self._tokens = pl_module.tokens_seen - self._tokens, pl_module.tokens_seen
        if pl_module.last_step_skipped:
            self._reset()
            return
        sources = None
        if len(self.source_names):  # every rank takes part in the reduction, logging or not
            n = len(self.source_names)
            both = trainer.strategy.reduce(torch.cat([self._source_loss, self._source_tokens]), reduce_op="sum")
            sources = (both[:n], both[n:])
        self._reset()
        if step % self.log_every_n_steps:
            return
        metrics = {
            "train/loss": pl_module.last_loss,
            "train/stage": float(pl_module.stage),
            "train/batch_tokens": float(pl_module.tokens_per_step),
            "train/lr": self._lr,
            "train/grad_norm": float(self._grad_norm),
            "train/tokens_seen": float(pl_module.tokens_seen),
            "train/tokens_per_s": step_tokens / elapsed if elapsed > 0 else 0.0,
            "train/step": float(step),
        }
        if sources is not None:
            metrics.update(
                {
                    f"train_source/{name}": float(sources[0][i] / sources[1][i])
                    for i, name in enumerate(self.source_names)
                    if sources[1][i] > 0
                }
            )
        if self._peak and elapsed > 0:
            metrics.update({f"perf/{k}": v for k, v in mfu(step_tokens / elapsed, self._flops, self._peak).items()})
        log.to_loggers(trainer.loggers, metrics, step=pl_module.tokens_seen)
