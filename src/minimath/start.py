"""Where a stage starts, decided once and applied in one place.

`decide` looks at the stage directory and the config and returns a `StageStart` (the checkpoint it picks, read
once); `apply` carries it out on the module and the datamodule and says what the trainer resumes from. A new way
of starting a stage is one `StartKind` value, one branch in `decide` and one in `apply`.

| kind       | when                                                    | weights | AdamW moments | data position | schedule origin |
|------------|---------------------------------------------------------|---------|---------------|---------------|-----------------|
| `finished` | the stage directory holds `final.ckpt`                  | -       | -             | -             | -               |
| `resume`   | it holds `last.ckpt` (and `resume=auto`)                | its own | its own       | its own       | its own         |
| `branch`   | `branch_from=PATH`: a WSD decay branch of a stable run  | PATH's  | PATH's        | PATH's        | PATH's tokens   |
| `init`     | `init_from`: auto (stage N-1's final; `auto:RUN` in another run), a path, `hf:DIR` | the init's | with `init_optimizer` | from 0 | the init's tokens |
| `scratch`  | stage 1 with `init_from=auto`, or `init_from=none`       | random  | fresh         | from 0        | 0               |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from minimath.errors import UserError
from minimath.runs import FINAL, HF_PREFIX, LAST, Fingerprint, auto_init_run, checkpoint_dir, previous_stage_checkpoint

if TYPE_CHECKING:
    from minimath.data.datamodule import MixtureDataModule
    from minimath.lit_module import MiniMathModule


class StartKind(enum.Enum):
    FINISHED = "finished"
    RESUME = "resume"
    BRANCH = "branch"
    INIT = "init"
    SCRATCH = "scratch"


@dataclass(frozen=True)
class StageStart:
    """Where a stage starts (`StartKind`). `checkpoint` is the file read once (None for scratch and finished);
    `differs`: the settings in which an `init_from=auto` checkpoint's stage was trained otherwise than this run
    would have."""

    kind: StartKind
    path: Path | None = None
    checkpoint: dict | None = None
    differs: tuple[str, ...] = ()

    @property
    def meta(self):
        from minimath.checkpoint import CheckpointMeta

        return None if self.checkpoint is None else CheckpointMeta.of(self.checkpoint)

    @property
    def resume_path(self) -> Path | None:
        """The checkpoint `trainer.fit` restores everything from (a resume only)."""
        return self.path if self.kind is StartKind.RESUME else None

    def describe(self, tokens_per_step: int) -> str:
        meta = self.meta
        if self.kind is StartKind.FINISHED:
            return f"already finished: {self.path}"
        if self.kind is StartKind.RESUME:
            return f"resuming {self.path} at step {meta.global_step} ({meta.tokens_seen:,} tokens seen)"
        if self.kind is StartKind.BRANCH:
            return (
                f"a decay branch from {self.path} (step {meta.global_step}, "
                f"{meta.tokens_seen:,} tokens seen): its weights, AdamW moments and data position"
            )
        if self.kind is StartKind.INIT:
            step = (
                f"; batch {meta.tokens_per_step:,} -> {tokens_per_step:,} tokens/step"
                if meta.tokens_per_step != tokens_per_step
                else ""
            )
            stage = "?" if meta.stage is None else meta.stage
            differs = f"; it was trained with other {', '.join(self.differs)}" if self.differs else ""
            return f"starting from {self.path} (stage {stage}, {meta.tokens_seen:,} tokens seen{step}{differs})"
        return "starting from scratch"


def decide(
    stage_dir: Path,
    stage: int,
    init_from,
    resume: str,
    branch_from: str | None = None,
    previous: Fingerprint | None = None,
) -> StageStart:
    """Decide where the stage in `stage_dir` starts (see `init_from`, `branch_from` and `resume` in
    conf/config.yaml; `previous`: the fingerprint of stage N-1 as this run would train it, what `init_from=auto`
    looks for)."""
    from minimath.checkpoint import load_checkpoint, load_resume_state

    ckpt_dir = checkpoint_dir(stage_dir)
    if (ckpt_dir / FINAL).is_file():
        return StageStart(StartKind.FINISHED, ckpt_dir / FINAL)
    if (ckpt_dir / LAST).exists():  # a file, or a sharded checkpoint's directory (published as a link)
        if resume != "auto":
            raise UserError(f"{stage_dir} holds an unfinished run: set resume=auto to continue it, or remove it")
        # a truncated or foreign file is an error here, never a silent restart
        return StageStart(StartKind.RESUME, ckpt_dir / LAST, load_resume_state(ckpt_dir / LAST))
    if branch_from:  # weights, moments and data position of a stable-phase checkpoint; the decay alone follows
        return StageStart(StartKind.BRANCH, Path(str(branch_from)), load_checkpoint(Path(str(branch_from))))
    auto_run = auto_init_run(init_from, stage_dir)
    if init_from is None or str(init_from).lower() == "none" or (auto_run is not None and stage == 1):
        return StageStart(StartKind.SCRATCH)
    if str(init_from).startswith(HF_PREFIX):  # a transformers model directory (minimath.hf)
        from minimath.hf import hf_checkpoint

        path = Path(str(init_from)[len(HF_PREFIX) :])
        return StageStart(StartKind.INIT, path, hf_checkpoint(path))
    if auto_run is not None:  # auto: this run's stage N-1; auto:RUN: another run's (an experiment's forks)
        if not auto_run.is_dir():
            raise UserError(f"init_from={init_from}: no run directory {auto_run}")
        path, differs = previous_stage_checkpoint(auto_run, stage, previous or Fingerprint())
        return StageStart(StartKind.INIT, path, load_checkpoint(path), tuple(differs))
    return StageStart(StartKind.INIT, Path(str(init_from)), load_checkpoint(Path(str(init_from))))


def apply(
    start: StageStart,
    module: MiniMathModule,
    datamodule: MixtureDataModule,
    init_optimizer: bool,
    decay_start_tokens: int | None,
) -> None:
    """Carry out `start` on a freshly built module and datamodule: the weights (checked against the model), the
    optimizer moments and the data position it brings, and where the stage's decay-phase mixture takes over
    (`decay_start_tokens` into this run, from the schedule). The trainer restores a resume itself
    (`start.resume_path`, from the same checkpoint dict)."""
    from minimath.checkpoint import check_architecture, load_weights, model_state

    source = str(start.path)
    if start.kind is StartKind.FINISHED:
        raise ValueError("a finished stage has nothing to start")
    if start.kind is StartKind.RESUME:  # checked here; Lightning restores everything else from the same dict
        if "state_dict" in start.checkpoint:
            load_weights(module.model, model_state(start.checkpoint), source)
        else:  # a sharded checkpoint's metadata: the shards are loaded (and their shapes checked) by each rank
            check_architecture(module.model_config, start.checkpoint, source)
    elif start.kind is StartKind.INIT:
        check_architecture(module.model_config, start.checkpoint, f"init_from {source}")
        module.start_from(start.checkpoint, source, load_optimizer=init_optimizer)
    elif start.kind is StartKind.BRANCH:
        module.start_from(start.checkpoint, source, load_optimizer=True)
        datamodule.continue_from(start.checkpoint, source)
    datamodule.start_decay_mix(decay_start_tokens)  # a resume then restores the decay start it was planned with
