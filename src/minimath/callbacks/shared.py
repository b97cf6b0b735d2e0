"""What several callbacks share: optimizer-step boundaries under gradient accumulation, and norms of tensors that
may be sharded over the ranks (gradients, parameter updates) taken over the whole model."""

from __future__ import annotations

from collections.abc import Iterable

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
from torch.distributed.tensor import DTensor


class StepBoundary:
    """Optimizer-step boundaries as seen from `on_train_batch_end`: with gradient accumulation several micro-batches
    end per step, and `trainer.global_step` moves on only after the step's last one."""

    def _start_counting(self, trainer: L.Trainer) -> None:
        self._step = trainer.global_step

    def _step_ended(self, trainer: L.Trainer) -> bool:
        """True once per optimizer step, at the end of its last micro-batch."""
        if trainer.global_step == self._step:
            return False
        self._step = trainer.global_step
        return True


SHARDING_STRATEGIES = (FSDPStrategy, ModelParallelStrategy)  # minimath.parallel.FSDP2 is a ModelParallelStrategy


def grads_are_sharded(strategy: object) -> bool:
    """Whether each rank holds only its shard of the gradients (FSDP, model-parallel), not a full replica."""
    return isinstance(strategy, SHARDING_STRATEGIES)


def computes_here(trainer: L.Trainer) -> bool:
    """Whether this rank runs a measurement that rank 0 logs (an in-training eval): rank 0 alone, or every rank
    where the parameters are sharded (each forward gathers them, a collective every rank must join)."""
    return trainer.is_global_zero or grads_are_sharded(trainer.strategy)


def norm_over_ranks(tensors: Iterable[torch.Tensor], strategy) -> torch.Tensor:
    """The L2 norm of `tensors` as whole tensors, whichever rank holds which part. DTensors (FSDP2, model parallel)
    give a partial norm that one all-reduce completes; FSDP1's flat shards, the square root of the ranks' summed
    squares; replicas (single device, DDP) already hold the whole. Every rank must call it (a collective)."""
    norm = torch.nn.utils.get_total_norm(list(tensors))
    if isinstance(norm, DTensor):
        return norm.full_tensor()
    if not grads_are_sharded(strategy):
        return norm
    return strategy.reduce(norm.double().square(), reduce_op="sum").sqrt()


def grad_norm(parameters: Iterable[torch.nn.Parameter], strategy) -> torch.Tensor:
    """The L2 norm of the gradients of `parameters` over the whole model (`norm_over_ranks`)."""
    return norm_over_ranks([p.grad for p in parameters if p.grad is not None], strategy)
