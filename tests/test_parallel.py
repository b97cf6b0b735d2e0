"""FSDP2 (`minimath.parallel`, `hardware=fsdp`) on CPUs over gloo: two ranks train and save sharded checkpoints that
export and eval read, a killed run resumes bit-identically, runs resume on another world size (2 -> 1, then 1 -> 2)
at the same data position (one subprocess test, as each launch costs seconds); in one process, the mixed-precision
policy and activation checkpointing under `fully_shard`, and the rank a Slurm or torchrun environment gives."""

import os
import shutil
import signal
import time

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from minimath.checkpoint import is_sharded, load_checkpoint
from minimath.errors import UserError
from minimath.model import Transformer
from minimath.parallel import FSDP2
from minimath.tb import read_scalars as scalars

from conftest import train_cli

# the CPU form of hardware=fsdp (conf/hardware/fsdp.yaml says which keys): 4 x 32-token sequences per rank, 12 steps
FSDP_ON_CPU = [
    "hardware=fsdp",
    "hardware.accelerator=cpu",
    "hardware.precision=32-true",
    "hardware.strategy.param_dtype=none",
    "hardware.peak_tflops=null",
    "hardware.num_workers=0",
    "batch=256",
    "train.max_tokens=3072",
    "checkpoint.every_n_train_steps=2",
    "checkpoint.keep_last=null",
    # below the tiny model's gradient norms (0.6-0.8), so every step clips: equal losses on 1 and 2 ranks then also
    # say the clipping norm is the whole model's, not a shard's
    "trainer.gradient_clip_val=0.3",
]


def fsdp_run(run_dir, data_root, ranks: int, new_session: bool = False):
    return train_cli(run_dir, data_root, *FSDP_ON_CPU, f"hardware.devices={ranks}", new_session=new_session)


def finish(proc) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


def shard_files(step_dir) -> list[str]:
    return sorted(p.name for p in step_dir.glob("*.distcp"))


def export_and_eval_read_shards(ckpts, out) -> None:
    """The sharded last step is consolidated on read: its weights are final.ckpt's, and `minimath.export` and
    `eval.py`'s loader take the directory as they take a file."""
    from minimath.eval.generation import load_for_inference
    from minimath.export import export

    sharded, final = load_checkpoint(ckpts / "last.ckpt"), load_checkpoint(ckpts / "final.ckpt")
    assert is_sharded(ckpts / "last.ckpt") and sharded["global_step"] == final["global_step"] == 12
    for name, tensor in final["state_dict"].items():
        assert torch.equal(sharded["state_dict"][name], tensor)
    assert len(final["optimizer_states"][0]["state"]) == len(final["state_dict"])  # AdamW moments of every tensor
    model, _ = load_for_inference(ckpts / "last.ckpt")
    assert torch.equal(model.tok_embeddings.weight, final["state_dict"]["model.tok_embeddings.weight"])
    assert (export(ckpts / "last.ckpt", out) / "model.safetensors").is_file()


def resume_from(source, target, step: int) -> None:
    """`target`: a copy of the run directory `source` as it was when `step`'s checkpoint was the last one."""
    shutil.copytree(source, target, symlinks=True)
    ckpts = target / "checkpoints"
    (ckpts / "final.ckpt").unlink(missing_ok=True)
    for later in ckpts.glob("step*.ckpt"):
        if int(later.name[4:11]) > step:
            shutil.rmtree(later)
    (ckpts / "last.ckpt").unlink()
    (ckpts / "last.ckpt").symlink_to(f"step{step:07d}.ckpt")
    shutil.rmtree(target / "tb")  # the losses compared are the resumed run's own


@pytest.mark.slow
def test_two_cpu_ranks_save_shards_export_reads_them_and_runs_resume_after_sigkill_and_on_another_world_size(
    tmp_path, data_root
):
    """The reference trains 12 steps on 2 ranks (a sharded checkpoint every 2 steps; its last is read by export and
    eval, `export_and_eval_read_shards`). A second run is killed (every rank, SIGKILL) once its first checkpoint is
    published and rerun on 2 ranks: losses and final weights equal the reference's bit for bit. From that run's
    step-6 checkpoint (2 shards) a third resumes on 1 rank, and from the third's step-10 checkpoint (1 shard) a
    fourth on 2 ranks: each continues the reference's losses at the same data position. Across world sizes equal
    only to float order: the clipping norm sums the shards' partial norms in another order."""
    finish(fsdp_run(tmp_path / "ref", data_root, 2))
    ref_ckpts = tmp_path / "ref" / "checkpoints"
    assert shard_files(ref_ckpts / "step0000004.ckpt") == ["__0_0.distcp", "__1_0.distcp"]
    assert (ref_ckpts / "last.ckpt").is_symlink() and os.readlink(ref_ckpts / "last.ckpt") == "step0000012.ckpt"
    assert (ref_ckpts / "final.ckpt").is_file()  # consolidated: one file
    expected = scalars(tmp_path / "ref" / "tb", "train/loss")
    assert len(expected) == 12
    export_and_eval_read_shards(ref_ckpts, tmp_path / "hf")
    reference = load_checkpoint(ref_ckpts / "final.ckpt")

    victim = fsdp_run(tmp_path / "killed", data_root, 2, new_session=True)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"  # published once a step's shards are all written
    deadline = time.time() + 240
    while not last.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(victim.pid, signal.SIGKILL)  # both ranks, as a scheduler kills a job
    victim.communicate()
    assert last.exists() and not (tmp_path / "killed" / "checkpoints" / "final.ckpt").exists()
    shutil.rmtree(tmp_path / "killed" / "tb")
    assert "resuming" in finish(fsdp_run(tmp_path / "killed", data_root, 2))
    resumed = scalars(tmp_path / "killed" / "tb", "train/loss")
    assert resumed == {k: expected[k] for k in resumed} and 3072 in resumed
    final = load_checkpoint(tmp_path / "killed" / "checkpoints" / "final.ckpt")
    assert all(torch.equal(final["state_dict"][k], v) for k, v in reference["state_dict"].items())

    for source, target, step, ranks in (("killed", "shrunk", 6, 1), ("shrunk", "grown", 10, 2)):
        resume_from(tmp_path / source, tmp_path / target, step)
        out = finish(fsdp_run(tmp_path / target, data_root, ranks))
        assert f"resuming {tmp_path / target / 'checkpoints' / 'last.ckpt'} at step {step}" in out
        assert f"x {ranks}" in out
        losses = scalars(tmp_path / target / "tb", "train/loss")
        assert sorted(losses) == list(range((step + 1) * 256, 3073, 256))
        assert losses == pytest.approx({k: expected[k] for k in losses}, rel=1e-6)
        final = load_checkpoint(tmp_path / target / "checkpoints" / "final.ckpt")
        for name, tensor in reference["state_dict"].items():
            torch.testing.assert_close(final["state_dict"][name], tensor)
        assert final["tokens_seen"] == 3072 and final["MixtureDataModule"]["position"] == 96  # 12 x 8 sequences
    assert shard_files(tmp_path / "shrunk" / "checkpoints" / "step0000008.ckpt") == ["__0_0.distcp"]
    norms = [scalars(tmp_path / d / "tb", "train/grad_norm") for d in ("ref", "shrunk")]
    assert min(norms[0].values()) > 0.3  # every step clipped; the logged norm is the whole model's
    assert norms[1] == pytest.approx({k: norms[0][k] for k in norms[1]}, rel=1e-5)


@pytest.fixture
def one_rank_mesh(tmp_path):
    """A one-process gloo group and FSDP2's mesh on it (what Lightning builds before `configure_model`)."""
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield init_device_mesh("cpu", (1, 1), mesh_dim_names=("data_parallel", "tensor_parallel"))
    finally:
        dist.destroy_process_group()


def sharded_model(config, mesh, **strategy):
    torch.manual_seed(0)
    model = Transformer(config)
    fsdp = FSDP2(**strategy)
    fsdp._device_mesh = mesh
    fsdp.parallelize(model)
    return model


def loss_of(model, idx):
    hidden = model.hidden_states(idx)  # what training calls: registered as an FSDP forward method
    return F.cross_entropy(F.linear(hidden, model.output_weight).flatten(0, 1).float(), idx.flatten())


def test_bf16_param_dtype_computes_in_bf16_and_keeps_fp32_weights_and_gradients(tiny_model_config, one_rank_mesh):
    idx = torch.randint(0, tiny_model_config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    full = sharded_model(tiny_model_config, one_rank_mesh, param_dtype="none")
    mixed = sharded_model(tiny_model_config, one_rank_mesh, param_dtype="bf16")
    seen = []
    mixed.layers[0].attention.wq.register_forward_hook(lambda m, i, o: seen.append((m.weight.dtype, o.dtype)))
    loss = loss_of(mixed, idx)
    loss.backward()
    assert seen == [(torch.bfloat16, torch.bfloat16)]
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in mixed.parameters())
    assert loss.item() == pytest.approx(loss_of(full, idx).item(), rel=1e-2)


def test_activation_checkpointing_under_fsdp_gives_the_same_gradients(tiny_model_config, one_rank_mesh):
    idx = torch.randint(0, tiny_model_config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(2))
    grads = []
    for recompute in (False, True):
        model = sharded_model(tiny_model_config, one_rank_mesh, param_dtype="none")
        model.activation_checkpointing = recompute
        loss_of(model, idx).backward()
        grads.append([p.grad.full_tensor() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_an_unknown_param_dtype_is_a_one_line_error():
    with pytest.raises(UserError, match="param_dtype=fp8: expected one of none, bf16, fp16"):
        FSDP2(param_dtype="fp8")


CLUSTERS = {
    "slurm": (
        {
            "SLURM_NTASKS": "4",
            "SLURM_NTASKS_PER_NODE": "2",
            "SLURM_JOB_NAME": "minimath",
            "SLURM_JOB_ID": "123",
            "SLURM_NODELIST": "node[01-02]",
            "SLURM_PROCID": "3",
            "SLURM_LOCALID": "1",
            "SLURM_NODEID": "1",
        },
        ("SLURMEnvironment", 3, 1, 1, "node01"),
    ),
    "torchrun": (
        {
            "RANK": "2",
            "WORLD_SIZE": "4",
            "LOCAL_RANK": "0",
            "LOCAL_WORLD_SIZE": "2",
            "GROUP_RANK": "1",
            "MASTER_ADDR": "10.0.0.1",
            "MASTER_PORT": "29500",
            "TORCHELASTIC_RUN_ID": "minimath",
        },
        ("TorchElasticEnvironment", 2, 0, 1, "10.0.0.1"),
    ),
}


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_a_multi_node_fsdp_trainer_takes_its_rank_from_slurm_or_torchrun(cluster, tmp_path, monkeypatch):
    """`hardware=fsdp hardware.num_nodes=2` (2 ranks per node) as the run builds its trainer in a process that Slurm
    (`srun`) or torchrun started: Lightning's cluster environment gives the rank, the node and the main address, and
    the world is nodes x devices. Nothing connects: the process group starts only in `fit`."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only as fabric_rank_zero
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
    from lightning_utilities.core.rank_zero import rank_zero_only as utils_rank_zero

    from minimath.checkpoint import AtomicCheckpointIO
    from minimath.training import build_trainer

    from conftest import TINY_TRAIN_OVERRIDES, compose_config

    # Lightning writes what it resolves into this process (MASTER_ADDR/PORT, rank_zero_only.rank): all restored after
    written = {k for env, _ in CLUSTERS.values() for k in env} | {"MASTER_ADDR", "MASTER_PORT", "NODE_RANK"}
    for key in written | {k for k in os.environ if k.startswith(("SLURM_", "TORCHELASTIC_"))}:
        monkeypatch.setenv(key, "")  # recorded (present or not), so the test's end restores it exactly
        monkeypatch.delenv(key)
    for holder in (rank_zero_only, fabric_rank_zero, utils_rank_zero):
        monkeypatch.setattr(holder, "rank", getattr(holder, "rank", 0), raising=False)
    environment, expected = CLUSTERS[cluster]
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    cfg = compose_config(TINY_TRAIN_OVERRIDES + FSDP_ON_CPU + ["hardware.devices=2", "hardware.num_nodes=2"], tmp_path)
    trainer = build_trainer(cfg, "32-true", 1, 4, ["general_en"], AtomicCheckpointIO())
    cluster_env = trainer.strategy.cluster_environment
    seen = (type(cluster_env).__name__, trainer.global_rank, trainer.local_rank, trainer.node_rank)
    assert seen + (cluster_env.main_address,) == expected
    assert isinstance(trainer.strategy, FSDP2) and trainer.world_size == 4
