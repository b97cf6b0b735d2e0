"""Stage transitions, resume, atomic checkpoints, the NaN guard and multi-process training."""

import json
import os
import random
import signal
import time

import pytest
import torch
from omegaconf import open_dict

from minimath.checkpoint import AtomicCheckpointIO, CheckpointMeta, load_checkpoint
from minimath.errors import UserError
from minimath.runs import Fingerprint, mark_final, previous_stage_checkpoint
from minimath.tb import read_scalars as scalars
from minimath.training import run

from conftest import REPO, TINY_TRAIN_OVERRIDES, compose_config, train_cli

NO_STAGE = [o for o in TINY_TRAIN_OVERRIDES if o != "stage=1"]


def stage_config(tmp_path, data_root, stage, batch_tokens, extra=()):
    cfg = compose_config(
        NO_STAGE
        + [
            f"paths.data_root={data_root}",
            f"stage={stage}",
            f"batch={batch_tokens}",
            "callbacks.heldout_eval.n=2",
            "callbacks.heldout_eval.max_new_tokens=2",
            *extra,
        ],
        tmp_path,
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run" / f"stage{stage}-bs{batch_tokens}")
    return cfg


@pytest.mark.slow
def test_two_stages_switch_lr_and_batch_at_the_expected_token_counts(tmp_path, data_root):
    run(stage_config(tmp_path, data_root, 1, 128, ["train.max_tokens=512", "optim.lr=1e-3", "scheduler=constant"]))
    run(stage_config(tmp_path, data_root, 2, 256, ["train.max_tokens=512", "optim.lr=5e-4", "scheduler=constant"]))
    first, second = tmp_path / "run" / "stage1-bs128", tmp_path / "run" / "stage2-bs256"
    assert list(scalars(first / "tb", "train/lr")) == [128, 256, 384, 512]
    assert list(scalars(second / "tb", "train/lr")) == [768, 1024]  # tokens seen carried over
    assert list(scalars(second / "tb", "train/lr").values()) == pytest.approx([5e-4, 5e-4])
    assert list(scalars(first / "tb", "train/lr").values()) == pytest.approx([1e-3] * 4)
    assert set(scalars(second / "tb", "train/batch_tokens").values()) == {256.0}
    assert set(scalars(second / "tb", "train/stage").values()) == {2.0}
    final = load_checkpoint(second / "checkpoints" / "final.ckpt")
    assert final["tokens_seen"] == 1024 and final["stage"] == 2 and final["MixtureDataModule"]["stage"] == "2"


@pytest.mark.slow
def test_finished_stage_is_not_retrained_and_unfinished_previous_stage_is_refused(tmp_path, data_root, capsys):
    cfg = stage_config(tmp_path, data_root, 1, 128)
    run(cfg)
    final = tmp_path / "run" / "stage1-bs128" / "checkpoints" / "final.ckpt"
    mtime = final.stat().st_mtime_ns
    run(cfg)
    assert final.stat().st_mtime_ns == mtime
    final.unlink()  # as if stage 1 had crashed
    with pytest.raises(UserError, match="no finished stage 1 .*stage1-bs128 did not finish"):
        previous_stage_checkpoint(tmp_path / "run", 2, Fingerprint())


def finished_stage_dir(path, **values):
    (path / "checkpoints").mkdir(parents=True)
    (path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    mark_final(path)
    Fingerprint({"stage.id": 2, "model.mup": False, **values}).save(path, [])


def test_init_from_auto_takes_the_closest_previous_stage_of_the_same_model(tmp_path):
    finished_stage_dir(tmp_path / "stage2-bs163K", **{"batch.tokens_per_step": 163840})
    finished_stage_dir(tmp_path / "stage2-bs1.63M", **{"batch.tokens_per_step": 1638400})
    finished_stage_dir(tmp_path / "stage2-bs1.63M-abc123", **{"batch.tokens_per_step": 1638400, "model.mup": True})
    wanted = {"stage.id": 2, "model.mup": False, "batch.tokens_per_step": 1638400}
    path, differs = previous_stage_checkpoint(tmp_path, 3, Fingerprint(wanted))
    assert path.parent.parent.name == "stage2-bs1.63M" and differs == []
    path, differs = previous_stage_checkpoint(tmp_path, 3, Fingerprint({**wanted, "model.mup": True, "seed": 7}))
    assert path.parent.parent.name == "stage2-bs1.63M-abc123" and differs == ["seed"]  # µP only from µP
    with pytest.raises(UserError, match="several finished stage-2 runs .* equally close"):
        previous_stage_checkpoint(tmp_path, 3, Fingerprint({**wanted, "batch.tokens_per_step": 40960}))
    with pytest.raises(UserError, match="no finished stage 2 .* has this model .*model.qk_norm=true here"):
        previous_stage_checkpoint(tmp_path, 3, Fingerprint({**wanted, "model.qk_norm": True}))


def test_truncated_last_checkpoint_is_an_error_not_a_fresh_start(tmp_path, data_root):
    cfg = stage_config(tmp_path, data_root, 1, 128)
    ckpt_dir = tmp_path / "run" / "stage1-bs128" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    Fingerprint.of(cfg).save(ckpt_dir.parent, [])
    (ckpt_dir / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(UserError, match="truncated or not a MiniMATH checkpoint"):
        run(cfg)


def test_atomic_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {}, "step": 1}, target)

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {}, "step": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.slow
def test_nan_guard_skips_steps_then_stops(tmp_path, data_root, monkeypatch):
    import minimath.lit_module as lm

    real = lm.lm_loss
    calls = {"n": 0}

    def sometimes_nan(*args, **kwargs):
        calls["n"] += 1
        total, losses = real(*args, **kwargs)
        return (total * float("nan"), losses * float("nan")) if calls["n"] in (2, 4, 5, 6) else (total, losses)

    monkeypatch.setattr(lm, "lm_loss", sometimes_nan)
    cfg = stage_config(
        tmp_path,
        data_root,
        1,
        128,
        ["train.max_tokens=1280", "train.max_nonfinite_steps=3", "checkpoint.every_n_train_steps=1"],
    )
    with pytest.warns(UserWarning, match="non-finite loss"):
        with pytest.raises(lm.NonFiniteLossError, match="3 optimizer steps in a row"):
            run(cfg)
    ckpt = load_checkpoint(tmp_path / "run" / "stage1-bs128" / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    losses = scalars(tmp_path / "run" / "stage1-bs128" / "tb", "train/loss")
    assert list(losses) == [128, 256]  # steps 1 and 3 trained; 2, 4, 5 skipped (6 never ran)
    assert not (tmp_path / "run" / "stage1-bs128" / "checkpoints" / "final.ckpt").exists()


@pytest.mark.slow
def test_sigkill_then_rerun_reproduces_the_uninterrupted_losses(tmp_path, data_root):
    extra = ["train.max_tokens=7680", "checkpoint.every_n_train_steps=5"]  # 60 steps
    reference = train_cli(tmp_path / "ref", data_root, *extra)
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]

    kill_after = random.Random(os.getpid()).choice([10, 15, 20, 25])
    victim = train_cli(tmp_path / "killed", data_root, *extra)
    ckpt = tmp_path / "killed" / "checkpoints" / f"step{kill_after:07d}.ckpt"
    deadline = time.time() + 240
    while not ckpt.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed" / "checkpoints" / "final.ckpt").exists()
    rerun = train_cli(tmp_path / "killed", data_root, *extra)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert "resuming" in out
    expected = scalars(tmp_path / "ref" / "tb", "train/loss")
    resumed = scalars(tmp_path / "killed" / "tb", "train/loss")
    assert len(expected) == 60 and resumed == expected  # bit-identical on CPU


@pytest.mark.slow
def test_two_process_cpu_ddp_sees_different_data_and_the_same_weights(tmp_path, data_root):
    probe = tmp_path / "probe"
    proc = train_cli(
        tmp_path / "ddp",
        data_root,
        "hardware.devices=2",
        "hardware.strategy=ddp",
        "batch=256",
        "train.max_tokens=1024",
        "+callbacks.probe._target_=helpers.RankProbe",
        f"+callbacks.probe.out_dir={probe}",
        env={"PYTHONPATH": str(REPO / "tests")},
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 4  # 4 steps of 2 ranks × 4 × 32 tokens
    assert not set(ranks[0]["batches"]) & set(ranks[1]["batches"])
    assert ranks[0]["weights"] == ranks[1]["weights"]
    final = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "final.ckpt")
    assert final["tokens_seen"] == 1024 and final["MixtureDataModule"]["position"] == 32


def test_a_resumed_checkpoint_is_read_once(tmp_path, monkeypatch):
    """The run reads last.ckpt to decide and check; Lightning then gets the same dict, not a second read."""
    from minimath import checkpoint
    from minimath.start import StartKind, decide

    (tmp_path / "checkpoints").mkdir()
    AtomicCheckpointIO().save_checkpoint(
        {"state_dict": {}, "hyper_parameters": {}, "global_step": 3, "tokens_seen": 96},
        tmp_path / "checkpoints" / "last.ckpt",
    )
    reads = []
    real = checkpoint.load_checkpoint
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda p: reads.append(p) or real(p))
    start = decide(tmp_path, 2, "auto", "auto")
    assert start.kind is StartKind.RESUME and start.meta.global_step == 3 and start.meta.tokens_seen == 96
    io = AtomicCheckpointIO(preloaded={start.path: start.checkpoint})
    assert io.load_checkpoint(start.path) is start.checkpoint
    assert len(reads) == 1
    assert io.load_checkpoint(start.path)["global_step"] == 3 and len(reads) == 2  # handed over once only
    assert "resuming" in start.describe(128) and "96 tokens seen" in start.describe(128)


@pytest.mark.slow
def test_sigint_saves_the_interrupted_step_and_the_rerun_continues_identically(tmp_path, data_root):
    extra = [
        "train.max_tokens=7680",
        "checkpoint.every_n_train_steps=1000",
        "callbacks.progress.every_seconds=0",
    ]  # 60 steps; no step checkpoint but the interrupt's
    reference = train_cli(tmp_path / "ref", data_root, *extra)
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]

    victim = train_cli(tmp_path / "stopped", data_root, *extra)
    deadline = time.time() + 240
    for line in victim.stdout:  # the non-TTY progress line: one per step here
        if " step 12/60 " in line or time.time() > deadline:
            break
    victim.send_signal(signal.SIGINT)
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: stage 1 stopped at step ")
    assert "Traceback" not in err
    last = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.ckpt")
    stopped_at = last["global_step"]
    assert 12 <= stopped_at < 60 and f"stopped at step {stopped_at} of 60" in err
    assert (
        f"interrupted: stage 1 stopped at step {stopped_at} of 60" in (tmp_path / "stopped" / "train.log").read_text()
    )
    assert not (tmp_path / "stopped" / "checkpoints" / "final.ckpt").exists()

    rerun = train_cli(tmp_path / "stopped", data_root, *extra)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert f"resuming {tmp_path / 'stopped' / 'checkpoints' / 'last.ckpt'} at step {stopped_at}" in out
    expected = scalars(tmp_path / "ref" / "tb", "train/loss")
    assert scalars(tmp_path / "stopped" / "tb", "train/loss") == expected and len(expected) == 60


@pytest.mark.slow
def test_time_based_checkpoints_fire_and_only_the_newest_are_kept(tmp_path, data_root):
    cfg = stage_config(
        tmp_path,
        data_root,
        1,
        128,
        [
            "train.max_tokens=1280",
            "checkpoint.every_n_train_steps=null",
            "checkpoint.every_minutes=1e-9",
            "checkpoint.keep_last=2",
        ],
    )
    run(cfg)
    ckpts = tmp_path / "run" / "stage1-bs128" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step*.ckpt")) == ["step0000009.ckpt", "step0000010.ckpt"]
    assert load_checkpoint(ckpts / "final.ckpt")["global_step"] == 10


def record_optimizer_at_train_start(monkeypatch) -> list[dict]:
    """A copy of the AdamW state (`state_dict()["state"]`) that each run started after this call holds once its
    training starts, after the module has loaded any moments it brings: what its first step updates."""
    import copy

    from minimath.lit_module import MiniMathModule

    started = []
    on_train_start = MiniMathModule.on_train_start

    def recording(self):
        on_train_start(self)
        started.append(copy.deepcopy(self.trainer.optimizers[0].state_dict()["state"]))

    monkeypatch.setattr(MiniMathModule, "on_train_start", recording)
    return started


@pytest.mark.slow
def test_a_wsd_decay_branch_continues_the_stable_run_and_decays_alone(tmp_path, data_root, monkeypatch):
    stable = stage_config(
        tmp_path,
        data_root,
        1,
        128,
        [
            "train.max_tokens=1024",
            "scheduler=wsd",
            "scheduler.decay_fraction=0",
            "scheduler.warmup_steps=0",
            "checkpoint.every_n_train_steps=2",
            "checkpoint.keep_last=null",
            "optim.lr=1e-3",
        ],
    )
    run(stable)
    stable_dir = tmp_path / "run" / "stage1-bs128"
    point = stable_dir / "checkpoints" / "step0000004.ckpt"
    branch = stage_config(
        tmp_path,
        data_root,
        1,
        128,
        [
            "scheduler=wsd",
            f"branch_from={point}",
            "scheduler.decay_tokens=512",
            "scheduler.shape=linear",
            "scheduler.final_ratio=0.1",
            "optim.lr=1e-3",
        ],
    )
    with open_dict(branch):
        branch.paths.output_dir = str(tmp_path / "run" / "stage1-bs128-decay-step0000004")
    started = record_optimizer_at_train_start(monkeypatch)
    run(branch)
    out = tmp_path / "run" / "stage1-bs128-decay-step0000004"
    lrs = scalars(out / "tb", "train/lr")
    assert list(lrs) == [640, 768, 896, 1024]  # tokens seen go on from the branch point (4 steps × 128)
    assert list(lrs.values()) == pytest.approx([7.75e-4, 5.5e-4, 3.25e-4, 1e-4])  # linear, to 10% at the end
    final = load_checkpoint(out / "checkpoints" / "final.ckpt")
    stable_state = load_checkpoint(point)
    sequences = 4 * 128 // 32  # 4 steps of 128 tokens in 32-token windows
    assert final["MixtureDataModule"]["position"] == stable_state["MixtureDataModule"]["position"] + sequences
    # the stable run's moments were carried: the optimizer the branch's first step used held exactly the branch
    # point's AdamW state (step counts, exp_avg, exp_avg_sq of every parameter), non-zero (4 steps of gradients)
    carried, after = stable_state["optimizer_states"][0]["state"], final["optimizer_states"][0]["state"]
    (at_start,) = started
    n_params = sum(len(g["params"]) for g in stable_state["optimizer_states"][0]["param_groups"])
    assert set(carried) == set(at_start) == set(after) == set(range(n_params)) and n_params > 0
    for k in carried:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(at_start[k][key], carried[k][key]), (k, key)
        assert carried[k]["exp_avg"].abs().sum() > 0 and (carried[k]["exp_avg_sq"] > 0).any(), k
    # then updated: every parameter's step count goes on from the branch point's 4 for the branch's 4, and the
    # moments moved on from the carried ones
    assert {float(s["step"]) for s in carried.values()} == {4.0} and {float(s["step"]) for s in after.values()} == {8.0}
    assert all(not torch.equal(after[k]["exp_avg"], carried[k]["exp_avg"]) for k in carried)


ALL_DYNAMICS = [
    "model.mup=true",
    "model.mup_base_width=16",
    "model.qk_norm=true",
    "train.z_loss=1e-4",
    "scheduler=wsd",
    "scheduler.warmup_steps=2",
    "scheduler.decay_fraction=0.5",
    "scheduler.shape=sqrt",
    "callbacks=monitored",
    "callbacks.stability.every_n_steps=3",
    "train.loss_guard.action=skip",
    "train.loss_guard.window=2",
    "train.loss_guard.k=0.5",
    "+data.stages.1.decay_mix=[{source: general_en, share: 1.0}]",
    "checkpoint.every_n_train_steps=5",
    "checkpoint.keep_last=null",
    "train.max_tokens=2560",
]  # 20 steps; a low spike threshold so that some steps are skipped


@pytest.mark.slow
def test_resume_is_bit_identical_with_every_training_dynamics_feature_on(tmp_path, data_root):
    """µP, QK-norm, z-loss, WSD with a decay mixture, the monitors with spike skipping: a run resumed from its
    step-10 checkpoint logs the same losses, LRs and spikes as the uninterrupted one, and ends in the same weights."""
    import shutil

    run(stage_config(tmp_path / "a", data_root, 1, 128, ALL_DYNAMICS))
    ref = tmp_path / "a" / "run" / "stage1-bs128"
    resumed = tmp_path / "b" / "run" / "stage1-bs128"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(ref / "checkpoints" / "step0000010.ckpt", resumed / "checkpoints" / "last.ckpt")
    shutil.copy(ref / "fingerprint.json", resumed / "fingerprint.json")
    run(stage_config(tmp_path / "b", data_root, 1, 128, ALL_DYNAMICS))
    for tag in ("train/loss", "train/lr", "stability/loss_spike"):
        expected = {
            t: v
            for t, v in scalars(ref / "tb", tag).items()
            if t > CheckpointMeta.of(load_checkpoint(ref / "checkpoints" / "step0000010.ckpt")).tokens_seen
        }
        assert scalars(resumed / "tb", tag) == expected, tag
    assert scalars(ref / "tb", "stability/loss_spike")  # skipping happened, so the test covers it
    a, b = (load_checkpoint(d / "checkpoints" / "final.ckpt") for d in (ref, resumed))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["MixtureDataModule"]["decay_start"] == b["MixtureDataModule"]["decay_start"] == 40  # 10 steps × 4 seqs


@pytest.mark.parametrize(
    "overrides,same",
    [
        ([], True),
        (
            [
                "logger=tensorboard",
                "callbacks.progress.every_seconds=1",
                "trainer.log_every_n_steps=5",
                "run_name=x",
                "stage=3",
                "batch=256",
                "resume=never",
                "paths.runs=/tmp/o",
                "curriculum_eval_items=9",
            ],
            True,
        ),
        (["seed=7"], False),
        (["optim.lr=1e-3"], False),
        (["train.max_tokens=20480"], False),
        (["model.mup=true", "model.qk_norm=true", "train.z_loss=1e-4", "callbacks=monitored"], False),
        (["hardware=cpu_bf16"], False),
        (["callbacks=monitored"], False),
    ],
)  # its spike detector may skip steps
def test_only_result_changing_overrides_name_another_stage_directory(overrides, same):
    from minimath.runs import variant_suffix

    assert (variant_suffix(overrides) == "") is same


@pytest.mark.slow
def test_a_stage_directory_trained_with_other_settings_is_never_reused(tmp_path, data_root):
    """seed=, optim.lr= or a short max_tokens in the same directory: one line naming the keys, nothing trained."""
    short = stage_config(tmp_path, data_root, 1, 128, ["train.max_tokens=256"])
    run(short)
    final = tmp_path / "run" / "stage1-bs128" / "checkpoints" / "final.ckpt"
    for extra, named in (
        (["train.max_tokens=512"], "train.max_tokens=512 here, 256 there"),
        (["train.max_tokens=256", "seed=7"], "seed=7 here, 1234 there; data.sources"),
        (["train.max_tokens=256", "optim.lr=1e-3"], "optim.lr=0.001 here, 0.003 there"),
    ):
        with pytest.raises(
            UserError,
            match=f"stage1-bs128 was trained with other settings \\({named}.*\\): "
            "pass run_name=NEW for a separate run, or remove",
        ):
            run(stage_config(tmp_path, data_root, 1, 128, extra))
    assert load_checkpoint(final)["tokens_seen"] == 256


@pytest.mark.slow
def test_a_second_run_on_the_same_directory_stops_at_once_while_the_first_finishes(tmp_path, data_root):
    # 1,500 steps: long enough (seconds, not milliseconds) that the first is still training when the second starts
    extra = ["train.max_tokens=192000", "checkpoint.every_n_train_steps=500"]
    first = train_cli(tmp_path / "same", data_root, *extra)
    deadline = time.time() + 120
    while not (tmp_path / "same" / "fingerprint.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    second = train_cli(tmp_path / "same", data_root, *extra)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 2 and err.strip() == (
        f"error: {tmp_path / 'same'} is in use by another run "
        f"(pid {first.pid}): wait for it to end, or pass run_name=NEW "
        f"for a separate run"
    )
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    assert load_checkpoint(tmp_path / "same" / "checkpoints" / "final.ckpt")["global_step"] == 1500


def test_a_run_leaves_the_signal_handlers_as_it_found_them(tmp_path, data_root):
    # A leaked SIGTERM handler is inherited by every process forked later (the tokenizer pool of the next prepare),
    # which then ignores Pool.terminate's SIGTERM: the next run hung.
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    run(stage_config(tmp_path, data_root, 1, 128, ["train.max_tokens=256"]))
    assert {s: signal.getsignal(s) for s in before} == before
