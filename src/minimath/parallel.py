"""FSDP2, the torchtitan way, through Lightning's `ModelParallelStrategy` (`hardware=fsdp`): every transformer block
and then the whole model is `fully_shard`-ed over one data-parallel mesh dimension spanning every rank, so each rank
keeps 1/world of the parameters, gradients and AdamW moments. It runs on GPUs over NCCL and on CPUs over gloo (what
CI proves: training, sharded checkpoints, resume after SIGKILL, resume on another world size).

Step checkpoints are sharded (`torch.distributed.checkpoint`: a directory of one `__<rank>_0.distcp` file per rank,
`.metadata`, and `meta.pt` with everything that is not a tensor), written to a temporary directory and renamed into
place, so a crash mid-write leaves the previous checkpoint whole. They load on any world size (the checkpoint records
each tensor's global shape; every rank reads the pieces its shards need). The stage's `final.ckpt` is consolidated
into one ordinary file (`minimath.checkpoint.consolidate`) that export, eval and the next stage read as they read any
checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn

from minimath.errors import UserError
from minimath.io import remove_path, replace_path

MIXED_PRECISION = {None: None, "none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class FSDP2(ModelParallelStrategy):
    """`ModelParallelStrategy` with data parallelism over every rank (no tensor parallelism) and FSDP2 applied per
    block (`parallelize`, called from `MiniMathModule.configure_model`).

    - `param_dtype`: `bf16` or `fp16` gathers the parameters in that dtype for forward and backward (FSDP2's
      `MixedPrecisionPolicy`; master weights, gradient reduction and AdamW stay fp32); `none`: fp32 throughout.
      The GPU preset pairs `bf16` with `precision=bf16-mixed` (autocast for what runs outside the gathered
      parameters, the loss's matmul); on CPUs `none` with `precision=32-true`.
    - `reshard_after_forward`: free each block's gathered parameters after its forward (gathered again in
      backward: less memory, one more all-gather per block); the root keeps its own (needed at once by the loss).
    - `sharded_checkpoints`: each rank writes its shards (false: rank 0 gathers and writes one file, which needs
      the whole model and AdamW state in its CPU memory)."""

    def __init__(
        self,
        param_dtype: str | None = None,
        reshard_after_forward: bool = True,
        sharded_checkpoints: bool = True,
        **kwargs,
    ):
        if param_dtype not in MIXED_PRECISION:
            raise UserError(f"hardware.strategy.param_dtype={param_dtype}: expected one of none, bf16, fp16")
        super().__init__(save_distributed_checkpoint=bool(sharded_checkpoints), **kwargs)
        self.param_dtype = MIXED_PRECISION[param_dtype]
        self.reshard_after_forward = bool(reshard_after_forward)

    def setup_environment(self) -> None:
        # one data-parallel dimension over all ranks (Lightning's "auto" would make the node's ranks tensor-parallel)
        self._data_parallel_size, self._tensor_parallel_size = self.num_nodes * self.num_processes, 1
        super().setup_environment()

    def parallelize(self, model: nn.Module) -> None:
        """Shard each block, then the root (the embedding, tied to the output layer, and the final norm). The loss
        reads the tied output weight outside `forward`, after `hidden_states`: that method is registered as a
        forward method so FSDP gathers the root's parameters for it and keeps them through the loss."""
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

        mesh = self.device_mesh["data_parallel"]
        policy = MixedPrecisionPolicy(param_dtype=self.param_dtype, reduce_dtype=torch.float32)
        for block in model.layers:
            fully_shard(block, mesh=mesh, mp_policy=policy, reshard_after_forward=self.reshard_after_forward)
        fully_shard(model, mesh=mesh, mp_policy=policy)
        register_fsdp_forward_method(model, "hidden_states")

    def save_checkpoint(self, checkpoint: dict, filepath, storage_options=None) -> None:
        """A sharded checkpoint is written whole or not at all: into `.<name>.tmp`, then renamed over `filepath` (a
        published link there is replaced by the directory)."""
        if not self._save_distributed_checkpoint:
            return super().save_checkpoint(checkpoint, filepath, storage_options)
        path = Path(self.broadcast(str(filepath)))
        tmp = path.with_name(f".{path.name}.tmp")
        if self.global_rank == 0:
            remove_path(tmp)  # a write a crash cut short
        self.barrier("sharded checkpoint: clean")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        self.barrier("sharded checkpoint: written")
        if self.global_rank == 0:
            replace_path(tmp, path)
        self.barrier("sharded checkpoint: published")


def writes_directories(strategy: object) -> bool:
    """Whether the strategy's checkpoints are sharded directories rather than one file."""
    return isinstance(strategy, ModelParallelStrategy) and bool(strategy._save_distributed_checkpoint)
