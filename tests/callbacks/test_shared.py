"""Norms over ranks (gradients, updates) under every kind of sharding, and step boundaries."""

import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy, ModelParallelStrategy

from minimath.callbacks.shared import grad_norm, norm_over_ranks


class TwoFlatShards(FSDPStrategy):
    """FSDP1 on two ranks: this rank holds what it is given; the other rank's shard has squared norm 16."""

    def reduce(self, tensor, group=None, reduce_op="mean"):
        assert reduce_op == "sum"
        return tensor + 16.0


def test_a_flat_shards_norm_takes_the_other_ranks_squares():
    assert norm_over_ranks([torch.tensor([3.0, 0.0])], TwoFlatShards()).item() == 5.0
    assert norm_over_ranks([torch.tensor([3.0, 0.0]), torch.tensor([4.0])], DDPStrategy()).item() == 5.0


def test_a_rank_without_gradients_still_takes_part_with_zero():
    params = [torch.nn.Parameter(torch.zeros(3))]  # an empty shard (FSDP1): no gradient on this rank
    assert grad_norm(params, TwoFlatShards()).item() == 4.0


@pytest.fixture
def world_of_one(tmp_path):
    """A real one-process gloo world and its device mesh, for DTensors as FSDP2 and model parallelism shard them."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


def test_dtensor_norms_are_of_the_full_tensors_with_one_reduction(world_of_one):
    from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor

    class NoSecondReduction(ModelParallelStrategy):
        def reduce(self, tensor, group=None, reduce_op="mean"):
            raise AssertionError("a DTensor's norm is completed by DTensor itself")

    grads = [
        distribute_tensor(torch.tensor([3.0, 0.0]), world_of_one, [Shard(0)]),
        distribute_tensor(torch.tensor([[4.0]]), world_of_one, [Replicate()]),
    ]
    norm = norm_over_ranks(grads, NoSecondReduction())
    assert not isinstance(norm, DTensor) and norm.item() == 5.0
