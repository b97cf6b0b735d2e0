"""Hydra multiruns of train.py through the launchers a user sweeps with: the basic launcher, joblib (parallel local
jobs, jobs × threads sized to the cores) and submitit's local executor (real subprocess jobs, as on Slurm). Each
sweep trains the tiny model for a few steps; a failed job is reported and the sweep's other jobs still run."""

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from minimath.config import parallel_jobs
from minimath.errors import JobFailed
from minimath.hardware import set_threads

from conftest import REPO, TINY_TRAIN_OVERRIDES


def test_parallel_jobs_fill_the_cores_without_oversubscribing_them():
    assert parallel_jobs(None, cores=2) == 1  # torch's default threads use every core: one job at a time
    assert parallel_jobs(1, cores=2) == 2
    assert parallel_jobs(2, cores=8) == 4
    assert parallel_jobs(16, cores=8) == 1


def test_threads_setting_sets_torch_threads_and_refuses_nonsense():
    import torch

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)  # unset: left as it is
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(Exception, match="hardware.threads=0"):
        set_threads(0)


def test_a_failed_job_crosses_process_boundaries_with_its_message_and_status():
    err = pickle.loads(pickle.dumps(JobFailed("stage 2 ended with status 2", 2)))
    assert (str(err), err.status) == ("stage 2 ended with status 2", 2)


def sweep(runs: Path, data_root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            *[
                o
                for o in TINY_TRAIN_OVERRIDES
                if not (o.startswith("stage=") and any(e.startswith("stage=") for e in extra))
            ],
            f"paths.data_root={data_root}",
            f"paths.runs={runs}",
            "callbacks.heldout_eval.every_n_steps=1000",
            "callbacks.heldout_eval.n=1",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def finished(runs: Path) -> list[Path]:
    return sorted(runs.glob("*/stage1-bs128*/checkpoints/final.ckpt"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=joblib", "hardware.threads=1", "hydra.launcher.n_jobs=${minimath.parallel_jobs:1}"],
        ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
    ],
    ids=["joblib", "submitit_local"],
)
def test_a_sweep_runs_its_jobs_through_the_launcher(launcher, tmp_path, data_root):
    result = sweep(tmp_path / "runs", data_root, "seed=1,2", *launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(finished(tmp_path / "runs")) == 2  # one stage directory per seed, each with its final checkpoint
    if "submitit" in launcher[0]:  # real jobs: submitit's own records of each
        assert len(list((tmp_path / "runs").glob("*/.submitit/*/*_result.pkl"))) == 2


@pytest.mark.slow
def test_a_failed_job_is_reported_and_the_other_jobs_still_run(tmp_path, data_root):
    result = sweep(tmp_path / "runs", data_root, f"init_from={tmp_path / 'missing.ckpt'},none")
    assert result.returncode == 2
    assert "error: checkpoint" in result.stderr and "missing.ckpt does not exist" in result.stderr
    assert "error: a job of the sweep failed" in result.stderr.splitlines()[-1]
    assert len(finished(tmp_path / "runs")) == 1  # init_from=none trained after init_from=<missing> failed


@pytest.mark.slow
def test_parallel_curricula_of_different_seeds_prepare_and_train_side_by_side(tmp_path, data_root):
    # two whole curricula at once through joblib (2 jobs x 1 thread), each preparing its seed's sources into the
    # shared data directory: neither may trip over the other's files
    result = sweep(
        tmp_path / "runs",
        tmp_path / "data",  # a fresh data directory: both jobs prepare
        "stage=all",
        "seed=1,2",
        "curriculum_eval_items=3",
        "hydra/launcher=joblib",
        "hardware.threads=1",
        "hydra.launcher.n_jobs=${minimath.parallel_jobs:1}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "runs").glob("*/curriculum-*.json"))) == 2


@pytest.mark.slow
def test_rerunning_an_interrupted_sweep_resumes_the_interrupted_job_and_skips_the_finished(tmp_path, data_root):
    import re
    import signal
    import time

    runs = tmp_path / "runs"
    longer = ["train.max_tokens=5120", "checkpoint.every_n_train_steps=1"]  # 40 steps, a checkpoint each
    assert sweep(runs, data_root, "seed=2", *longer).returncode == 0  # seed 2 finished before the interruption
    # seed 1 interrupted mid-stage (SIGTERM: the graceful interrupt saves last.ckpt and the job stops)
    job = subprocess.Popen(
        [sys.executable, "train.py", *[o for o in TINY_TRAIN_OVERRIDES if not o.startswith("train.max_tokens=")],
         f"paths.data_root={data_root}", f"paths.runs={runs}",
         "callbacks.heldout_eval.every_n_steps=1000", "callbacks.heldout_eval.n=1", "seed=1", *longer],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def unfinished_steps() -> list[int]:  # step checkpoints of the job's (unfinished) stage: keep_last holds 3
        return [
            int(p.stem.removeprefix("step"))
            for d in runs.glob("*/stage1-*")
            if not (d / "checkpoints" / "final.ckpt").exists()
            for p in (d / "checkpoints").glob("step*.ckpt")
        ]

    deadline = time.monotonic() + 300
    while not any(step >= 3 for step in unfinished_steps()) and time.monotonic() < deadline:
        time.sleep(0.05)  # any saved step from 3 on: polling for step 3 alone misses it on a loaded machine
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=300) != 0 and "interrupted: stage 1 stopped at step" in job.stderr.read()
    (seed1,) = [d for d in runs.glob("*/stage1-*") if not (d / "checkpoints" / "final.ckpt").exists()]
    finished_before = {p: p.stat().st_mtime_ns for p in finished(runs)}

    result = sweep(runs, data_root, "seed=1,2", *longer)  # the same sweep again
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(finished(runs)) == 2
    resumed = re.search(rf"resuming \S*{seed1.name}/checkpoints/last.ckpt at step (\d+)", result.stdout + result.stderr)
    assert resumed and int(resumed[1]) >= 3  # from where the interruption saved, not from the start
    for path, mtime in finished_before.items():  # seed 2 was not trained again
        assert path.stat().st_mtime_ns == mtime
    assert "trained with these settings" in result.stdout + result.stderr


@pytest.mark.slow
def test_an_optuna_search_returns_each_trials_objective_and_records_the_best(tmp_path, data_root):
    import statistics

    import yaml

    from minimath.tb import read_scalars

    runs = tmp_path / "runs"
    result = sweep(
        runs,
        data_root,
        "hparams_search=wind_tunnel_lr",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=1",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "objective.tail=2",  # the tiny run logs 4 steps
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = {}  # each trial's objective, recomputed from its own TensorBoard events
    for stage_dir in runs.glob("*/stage1-*"):
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((stage_dir / ".hydra" / "overrides.yaml").read_text()))
        trials[float(overrides["optim.lr"])] = statistics.fmean(
            list(read_scalars(stage_dir / "tb", "train/loss").values())[-2:]
        )
    assert len(trials) == 3 and all(6.25e-4 <= lr <= 4e-2 for lr in trials)
    (results_file,) = runs.glob("*/optimization_results.yaml")
    best = yaml.safe_load(results_file.read_text())
    best_lr = min(trials, key=trials.get)
    assert best["best_params"]["optim.lr"] == pytest.approx(best_lr)
    assert best["best_value"] == pytest.approx(trials[best_lr])
