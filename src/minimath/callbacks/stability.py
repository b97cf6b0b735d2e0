"""What a training instability shows before the loss does (YuLan-Mini's monitors), and the loss spikes the module's
guard found."""

from __future__ import annotations

import lightning as L
import torch

from minimath import log
from minimath.callbacks.seam import TrainingState
from minimath.callbacks.shared import StepBoundary, grad_norm, norm_over_ranks


class StabilityMonitor(StepBoundary, L.Callback):
    """Every `every_n_steps` optimizer steps, on the tokens axis, from the step's first micro-batch: the model's
    probes (`Transformer.probes`: `stability/layer<i>/hidden_rms` (the residual stream after block i),
    `.../attn_norm_rms`, `.../ffn_norm_rms` (the norms' outputs), `.../max_attn_logit` (max |q·k|/√d over heads and
    positions), and `stability/logit_rms` (output-layer logits over at most `logit_positions` positions)), and per
    block `.../grad_norm` and `.../update_ratio` (‖Δθ‖/‖θ‖ of its parameters over the optimizer step), both over
    all ranks.

    And on every step in which the module's loss guard (`train.loss_guard`, `minimath.guards`) found a spike:
    `stability/loss_spike` (its z-score) and `stability/spike_loss`, at the tokens seen before that step."""

    def __init__(self, every_n_steps: int = 50, logit_positions: int = 256):
        self.every_n_steps, self.logit_positions = every_n_steps, logit_positions
        self._handles: list = []
        self._capture = False
        self._stats: dict[str, float] = {}
        self._before: dict[int, list[torch.Tensor]] = {}

    def _due(self, step: int) -> bool:
        return bool(self.every_n_steps) and step % self.every_n_steps == 0

    def on_train_start(self, trainer: L.Trainer, pl_module: TrainingState) -> None:
        self._start_counting(trainer)
        self._handles = [
            probe.module.register_forward_hook(self._hook(probe)) for probe in pl_module.probes(self.logit_positions)
        ]

    def on_train_end(self, trainer: L.Trainer, pl_module: TrainingState) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, probe):
        def hook(module, inputs, output):
            if self._capture:
                with torch.no_grad():
                    self._stats[probe.name] = float(probe.measure(inputs, output.detach()))

        return hook

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: TrainingState, batch, batch_idx) -> None:
        # the first micro-batch of a monitored step (global_step is the step about to be taken)
        self._capture = self._due(trainer.global_step) and trainer.global_step == self._step and not self._stats

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: TrainingState, optimizer) -> None:
        """Before the module's guards: the tokens before this step (a spike's place), and a monitored step's
        per-block gradient norms and parameters."""
        self._tokens_before = pl_module.tokens_seen
        self._capture = False
        if not self._stats:
            return
        for i, params in enumerate(pl_module.layer_parameters()):
            self._stats[f"layer{i}/grad_norm"] = float(grad_norm(params, trainer.strategy))
            self._before[i] = [p.detach().clone() for p in params]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: TrainingState, outputs, batch, batch_idx) -> None:
        if not self._step_ended(trainer):
            return  # a micro-batch inside an optimizer step
        spike = pl_module.last_spike
        if spike is not None and trainer.is_global_zero:
            log.to_loggers(
                trainer.loggers,
                {"stability/loss_spike": spike.z, "stability/spike_loss": spike.loss},
                step=self._tokens_before,
            )
        if not self._stats:
            return
        layers = pl_module.layer_parameters()
        for i, before in self._before.items():
            delta = norm_over_ranks([a.detach() - b for a, b in zip(layers[i], before)], trainer.strategy)
            norm = norm_over_ranks(before, trainer.strategy)
            self._stats[f"layer{i}/update_ratio"] = float(delta / norm.clamp(min=1e-12))
        self._before = {}
        metrics = {f"stability/{k}": v for k, v in self._stats.items()}
        self._stats = {}
        if trainer.is_global_zero:
            log.to_loggers(trainer.loggers, metrics, step=pl_module.tokens_seen)
