"""Where a stage starts: `decide` picks one `StartKind` per situation, `apply` carries each out on the module and
the datamodule."""

from pathlib import Path

import pytest

from minimath.checkpoint import AtomicCheckpointIO
from minimath.errors import UserError
from minimath.runs import Fingerprint
from minimath.start import StageStart, StartKind, apply, decide


def write(path: Path, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    AtomicCheckpointIO().save_checkpoint(
        {"state_dict": {}, "hyper_parameters": {}, "global_step": 2, "tokens_seen": 64, "stage": 1, **extra}, path
    )
    return path


def test_each_situation_decides_one_kind(tmp_path):
    stage = tmp_path / "stage2"
    assert decide(stage, 1, "auto", "auto").kind is StartKind.SCRATCH
    assert decide(stage, 2, "none", "auto").kind is StartKind.SCRATCH
    other = write(tmp_path / "other.ckpt")
    init = decide(stage, 2, str(other), "auto")
    assert init.kind is StartKind.INIT and init.path == other and init.meta.tokens_seen == 64
    branch = decide(stage, 2, "auto", "auto", branch_from=str(other))
    assert branch.kind is StartKind.BRANCH and branch.resume_path is None
    write(stage / "checkpoints" / "last.ckpt")
    resume = decide(stage, 2, str(other), "auto", branch_from=str(other))  # its own last.ckpt comes first
    assert resume.kind is StartKind.RESUME and resume.resume_path == stage / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match="set resume=auto to continue it"):
        decide(stage, 2, "auto", "never")
    write(stage / "checkpoints" / "final.ckpt")
    assert decide(stage, 2, "auto", "never").kind is StartKind.FINISHED


def test_init_auto_without_a_finished_previous_stage_is_one_line(tmp_path):
    with pytest.raises(UserError, match="has no finished stage 1"):
        decide(tmp_path / "stage2-bs256", 2, "auto", "auto", previous=Fingerprint())


def test_init_auto_in_another_run_takes_that_runs_previous_stage(tmp_path):
    curriculum, fork = tmp_path / "curriculum", tmp_path / "fork"
    final = write(curriculum / "stage1-bs256" / "checkpoints" / "final.ckpt")
    Fingerprint().save(final.parent.parent, [])
    nearer = write(fork / "stage1-bs256" / "checkpoints" / "final.ckpt")  # the fork's own stage 1 is not looked at
    Fingerprint().save(nearer.parent.parent, [])
    start = decide(fork / "stage2-bs256", 2, f"auto:{curriculum}", "auto", previous=Fingerprint())
    assert start.kind is StartKind.INIT and start.path == final
    assert decide(fork / "stage1-bs256-x", 1, f"auto:{curriculum}", "auto").kind is StartKind.SCRATCH
    with pytest.raises(UserError, match="no run directory"):
        decide(fork / "stage2-bs256", 2, f"auto:{tmp_path / 'missing'}", "auto", previous=Fingerprint())


class Recorder:
    """Stands in for the module and the datamodule: records what `apply` asks of them."""

    def __init__(self):
        self.calls = []
        self.model, self.model_config = object(), object()

    def start_from(self, checkpoint, source, load_optimizer):
        self.calls.append(("start_from", load_optimizer))

    def continue_from(self, checkpoint, source):
        self.calls.append(("continue_from",))

    def start_decay_mix(self, tokens):
        self.calls.append(("start_decay_mix", tokens))


@pytest.mark.parametrize(
    "kind,init_optimizer,module_calls,data_calls",
    [
        (StartKind.SCRATCH, False, [], [("start_decay_mix", 96)]),
        (StartKind.INIT, False, [("start_from", False)], [("start_decay_mix", 96)]),
        (StartKind.INIT, True, [("start_from", True)], [("start_decay_mix", 96)]),
        (StartKind.BRANCH, False, [("start_from", True)], [("continue_from",), ("start_decay_mix", 96)]),
    ],
)
def test_apply_carries_out_each_kind(kind, init_optimizer, module_calls, data_calls, monkeypatch):
    from minimath import checkpoint

    monkeypatch.setattr(checkpoint, "check_architecture", lambda *a: None)
    module, datamodule = Recorder(), Recorder()
    start = StageStart(kind, Path("x.ckpt"), {} if kind is not StartKind.SCRATCH else None)
    apply(start, module, datamodule, init_optimizer, decay_start_tokens=96)
    assert module.calls == module_calls and datamodule.calls == data_calls


def test_a_finished_stage_has_nothing_to_apply():
    with pytest.raises(ValueError, match="nothing to start"):
        apply(StageStart(StartKind.FINISHED, Path("final.ckpt")), Recorder(), Recorder(), False, None)
