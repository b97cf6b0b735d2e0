"""What a callback may read from the LightningModule (`MiniMathModule` satisfies it): the training state, the loss
guard's finding, and the model's parameters and probes. Callbacks annotate `pl_module: TrainingState` and read
nothing else from it, so the module can change inside without them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch

from minimath.guards import Spike
from minimath.model import ModelConfig, Probe


@runtime_checkable
class TrainingState(Protocol):
    model_config: ModelConfig
    stage: int
    tokens_per_step: int  # the batch: input positions per optimizer step, all ranks
    tokens_seen: int  # input positions consumed by optimizer steps, all ranks, carried across stages
    last_loss: float  # the last optimizer step's mean loss per valid token, all micro-batches and ranks
    last_step_skipped: bool  # the last optimizer step changed nothing (a NaN/Inf loss, or a spike skipped)
    last_spike: Spike | None  # what the loss guard found in the last optimizer step

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...

    def layer_parameters(self) -> list[list[torch.nn.Parameter]]:
        """Each transformer block's parameters, in order."""

    def probes(self, logit_positions: int) -> list[Probe]:
        """The quantities a monitor may read off the forward pass, each from one module's forward hook."""
