"""Where a stage trains and where it starts from — the one home of both.

Layout: `<runs>/<run_name>/stage<N>-bs<batch>/checkpoints/{last,final}.ckpt` (Hydra's run and sweep directories
are this module's `stage_dir_name`, through the `minimath.stage_dir` resolver). A stage directory's name says
which stage and which batch setting its checkpoints belong to. `final.ckpt` appears only when a stage has trained
to its end, so the next stage never starts from an unfinished one.

Start: `stage_start` decides, in this order, finished (nothing to do) / resume (this stage's `last.ckpt`) /
init (`init_from`: the previous stage's `final.ckpt`, a path, or `hf:DIR`, a transformers model) / scratch, and reads the checkpoint it picks once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from minimath.checkpoint import CheckpointMeta, load_checkpoint
from minimath.errors import UserError
from minimath.io import atomic_publish

_STAGE_DIR = re.compile(r"^stage(\d+)-bs(.+)$")
FINAL = "final.ckpt"
LAST = "last.ckpt"
ALL_STAGES = "all"   # stage=all: the whole curriculum
HF_PREFIX = "hf:"    # init_from=hf:DIR: a transformers model directory


def stage_dir_name(stage: int | str, batch_name: str) -> str:
    return f"stage{stage}-bs{batch_name}"


def run_dir(runs: str | Path, run_name: str) -> Path:
    return Path(str(runs)) / str(run_name)


def hydra_dir(part: str, root) -> str:
    """Hydra's output directory for a composed training config (`part="path"`): the stage directory, or the run
    directory when the whole curriculum runs (`stage=all`; each stage is its own process with its own directory).
    `part="name"`: the stage directory's name alone (a multirun's subdir)."""
    if part == "name":
        return stage_dir_name(root.stage.id, root.batch.name) + branch_suffix(root)
    base = run_dir(root.paths.runs, root.run_name)
    if str(root.stage.id) == ALL_STAGES:
        return str(base)
    return str(base / (stage_dir_name(root.stage.id, root.batch.name) + branch_suffix(root)))


def branch_suffix(root) -> str:
    """A WSD decay branch trains in a sibling directory named after the checkpoint it branches from
    (`stage4-bs2.5K-decay-step0000400`), so branches from several points live side by side."""
    decay_from = root.scheduler.get("decay_from") if "scheduler" in root else None
    return f"-decay-{Path(str(decay_from)).stem}" if decay_from else ""


def checkpoint_dir(stage_dir: Path) -> Path:
    return Path(stage_dir) / "checkpoints"


def finished_stages(run: Path, stage: int) -> dict[str, Path]:
    """{batch name: final.ckpt} of every finished run of `stage` under the run directory `run`."""
    found = {}
    for child in sorted(Path(run).glob(f"stage{stage}-bs*")):
        m = _STAGE_DIR.match(child.name)
        final = checkpoint_dir(child) / FINAL
        if m and int(m[1]) == stage and final.is_file():
            found[m[2]] = final
    return found


def previous_stage_checkpoint(run: Path, stage: int, batch_name: str) -> Path:
    """The final checkpoint of stage N-1 in this run: the one with the same batch setting if there is one
    (an ablation fork continues its own branch), else the only one."""
    previous = finished_stages(run, stage - 1)
    if batch_name in previous:
        return previous[batch_name]
    if len(previous) == 1:
        return next(iter(previous.values()))
    if not previous:
        unfinished = [p.name for p in Path(run).glob(f"stage{stage - 1}-bs*")]
        hint = f" ({', '.join(unfinished)} did not finish)" if unfinished else ""
        raise UserError(f"stage {stage} starts from stage {stage - 1}, but {run} has no finished stage "
                        f"{stage - 1}{hint}: run `python train.py stage={stage - 1}` first, or pass init_from=PATH "
                        f"(init_from=none: from scratch)")
    raise UserError(f"several finished stage-{stage - 1} runs in {run} ({', '.join(sorted(previous))}): "
                    f"pass init_from=PATH to choose one")


def mark_final(stage_dir: Path) -> Path:
    """Publish the stage's last checkpoint as final.ckpt (a hard link or copy, then an atomic rename)."""
    ckpt_dir = checkpoint_dir(stage_dir)
    return atomic_publish(ckpt_dir / LAST, ckpt_dir / FINAL)


@dataclass(frozen=True)
class StageStart:
    """Where a stage starts. kind: `finished` (its final.ckpt exists: nothing to train), `resume` (its own
    last.ckpt: exact data position and optimizer state), `init` (another checkpoint's weights, optionally its
    moments) or `scratch`. `checkpoint` is the file read once (None for scratch and finished)."""

    kind: str
    path: Path | None = None
    checkpoint: dict | None = None

    @property
    def meta(self) -> CheckpointMeta | None:
        return None if self.checkpoint is None else CheckpointMeta.of(self.checkpoint)

    def describe(self, tokens_per_step: int) -> str:
        if self.kind == "finished":
            return f"already finished: {self.path}"
        if self.kind == "resume":
            return f"resuming {self.path} at step {self.meta.global_step} ({self.meta.tokens_seen:,} tokens seen)"
        if self.kind == "branch":
            return (f"a decay branch from {self.path} (step {self.meta.global_step}, "
                    f"{self.meta.tokens_seen:,} tokens seen): its weights, AdamW moments and data position")
        if self.kind == "init":
            meta = self.meta
            step = (f"; batch {meta.tokens_per_step:,} -> {tokens_per_step:,} tokens/step"
                    if meta.tokens_per_step != tokens_per_step else "")
            stage = "?" if meta.stage is None else meta.stage
            return f"starting from {self.path} (stage {stage}, {meta.tokens_seen:,} tokens seen{step})"
        return "starting from scratch"


def stage_start(stage_dir: Path, stage: int, batch_name: str, init_from, resume: str,
                decay_from: str | None = None) -> StageStart:
    """Decide where the stage in `stage_dir` starts (see `init_from` and `resume` in conf/config.yaml;
    `decay_from`: a WSD decay branch, `scheduler.decay_from`)."""
    ckpt_dir = checkpoint_dir(stage_dir)
    if (ckpt_dir / FINAL).is_file():
        return StageStart("finished", ckpt_dir / FINAL)
    if (ckpt_dir / LAST).is_file():
        if resume != "auto":
            raise UserError(f"{stage_dir} holds an unfinished run: set resume=auto to continue it, or remove it")
        # a truncated or foreign file is an error here, never a silent restart
        return StageStart("resume", ckpt_dir / LAST, load_checkpoint(ckpt_dir / LAST))
    if decay_from:  # weights, moments and data position of a stable-phase checkpoint; the decay alone follows
        return StageStart("branch", Path(str(decay_from)), load_checkpoint(Path(str(decay_from))))
    if init_from is None or str(init_from).lower() == "none" or (str(init_from) == "auto" and stage == 1):
        return StageStart("scratch")
    if str(init_from).startswith(HF_PREFIX):  # a transformers model directory (minimath.hf)
        from minimath.hf import hf_checkpoint

        path = Path(str(init_from)[len(HF_PREFIX):])
        return StageStart("init", path, hf_checkpoint(path))
    path = (previous_stage_checkpoint(Path(stage_dir).parent, stage, batch_name) if str(init_from) == "auto"
            else Path(str(init_from)))
    return StageStart("init", path, load_checkpoint(path))
