"""Where a stage trains and what it is (where it starts from: `minimath.start`).

Layout: `<runs>/<run_name>/stage<N>-bs<batch>[-<variant>]/checkpoints/{last,final}.ckpt` (Hydra's run and sweep
directories are this module's `hydra_dir`, through the `minimath.stage_dir` resolver). A stage directory's name
says which stage and which batch setting its checkpoints belong to; `<variant>` is a short hash of the command
line's result-determining overrides (`seed=7`, `model.mup=true`, `train.max_tokens=20480`, ...: `RESULT_KEYS`), so
a run with other settings never lands in the default run's directories. `final.ckpt` appears only when a stage has
trained to its end, so the next stage never starts from an unfinished one.

Identity: each stage directory records in `fingerprint.json` the resolved values of every setting that determines
its result (`Fingerprint`); a directory whose recorded fingerprint differs from the requested one is never reused
(one line naming the differing keys). One run per directory: `stage_lock` holds an exclusive `flock` on its `.lock`
for the run's life (the kernel releases it when the process dies).

Previous stage: `previous_stage_checkpoint` finds, for `init_from=auto`, the previous stage's `final.ckpt` of the
same model, closest in settings.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from minimath.config import ALL_STAGES, step_batch
from minimath.errors import UserError
from minimath.io import atomic_publish, atomic_write_json
from minimath.log import rank_zero_only
from minimath.provenance import PROVENANCE

_STAGE_DIR = re.compile(r"^stage(\d+)-bs(.+)$")
FINAL = "final.ckpt"
LAST = "last.ckpt"
FINGERPRINT = "fingerprint.json"
LOCK = ".lock"
# What a run writes into a stage directory before its first checkpoint: a directory holding nothing else is removed
# when the run stops (a failed start leaves no directory behind).
BOOKKEEPING = (".hydra", "train.log", LOCK, FINGERPRINT, PROVENANCE)
HF_PREFIX = "hf:"  # init_from=hf:DIR: a transformers model directory
AUTO_PREFIX = "auto:"  # init_from=auto:RUN: stage N-1 of another run directory, found as init_from=auto finds it

# The settings that determine a stage's checkpoints (dotted config keys; a key covers everything under it), and
# the keys under them that do not (where the data lives, how many tokenizer processes, a compile or a memory
# knob). Nothing else does: logging, measuring callbacks, paths, run_name, resume, dry_run, the curriculum's eval.
RESULT_KEYS = (
    "stage.id",
    "seed",
    "model",
    "data",
    "batch.tokens_per_step",
    "optim",
    "scheduler",
    "train",
    "hardware.precision",
    "hardware.strategy.param_dtype",
    "trainer",
    "init_from",
    "init_optimizer",
    "init_vocab",
    "branch_from",
    "callbacks.stability.spike_action",
)
NOT_RESULT_KEYS = (
    "data.dir",
    "data.workers",
    "train.compile",
    "train.loss_chunk_bytes",
    "trainer.log_every_n_steps",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
)
# Recorded keys whose values are derived from plain config keys (`stage=3`, `batch=1.63M`): the names they had when
# stage and batch were config groups, so directories recorded then keep their fingerprints.
# Likewise the loss guard's action (callbacks=monitored turns the guard on), recorded where it was when the guard
# was a callback's setting.
DERIVED = {
    "stage.id": lambda cfg: int(cfg.stage),
    "batch.tokens_per_step": lambda cfg: step_batch(cfg).tokens_per_step,
    "callbacks.stability.spike_action": lambda cfg: (
        cfg.train.loss_guard.action if cfg.train.get("loss_guard") else None
    ),
}
# Recorded only when set (settings added after directories recorded their fingerprints).
RECORDED_WHEN_SET = ("branch_from", "train.loss_guard", "init_vocab", "hardware.strategy.param_dtype")

# Config groups whose options bundle result-determining settings: an experiment's arms (conf/arm/<experiment>/, each
# `# @package _global_`), swept as `+arm/<experiment>=a,b`; the option chosen names the stage directory's variant.
RESULT_GROUPS = ("arm",)

# What the directory names already say (run_name: the model and data choices; the stage directory: the stage and
# batch choices, and a decay branch's checkpoint).
NAMED_IN_PATH = ("model", "data", "stage", "batch", "branch_from")


def _covered(key: str, keys: tuple[str, ...]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in keys)


def determines_result(key: str) -> bool:
    """Whether a config key (or a group, `hardware`; an experiment's arm, `arm/<experiment>`) can change a stage's
    checkpoints."""
    if key.split("/", 1)[0] in RESULT_GROUPS:
        return True
    if _covered(key, NOT_RESULT_KEYS):
        return False
    return _covered(key, RESULT_KEYS) or any(k.startswith(key + ".") for k in RESULT_KEYS)


def _flatten(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    elif not _covered(prefix, NOT_RESULT_KEYS) and not (value is None and prefix in RECORDED_WHEN_SET):
        out[prefix] = value
    return out


@dataclass(frozen=True)
class Fingerprint:
    """The resolved values of a stage's result-determining settings (`RESULT_KEYS`), flat by dotted key."""

    values: dict = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: DictConfig) -> Fingerprint:
        out = {}
        for key in RESULT_KEYS:
            value = DERIVED[key](cfg) if key in DERIVED else OmegaConf.select(cfg, key, default=None)
            _flatten(key, OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value, out)
        return cls(json.loads(json.dumps(out, sort_keys=True, default=str)))  # as fingerprint.json will hold it

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.values, sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: Fingerprint) -> list[str]:
        """The keys whose values differ, the shallowest first (`seed` before the `data.sources.*.seed` it sets)."""
        return sorted(
            (k for k in set(self.values) | set(other.values) if self.values.get(k) != other.values.get(k)),
            key=lambda k: (k.count("."), k),
        )

    def describe_differences(self, other: Fingerprint, here: str, there: str, limit: int = 3) -> str:
        keys = self.differences(other)
        shown = [
            f"{k}={_short(self.values.get(k))} {here}, {_short(other.values.get(k))} {there}" for k in keys[:limit]
        ]
        return "; ".join(shown) + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")

    def save(self, stage_dir: Path, overrides: list[str]) -> None:
        atomic_write_json(
            Path(stage_dir) / FINGERPRINT, {"fingerprint": self.digest, "overrides": overrides, "values": self.values}
        )

    @classmethod
    def load(cls, stage_dir: Path) -> Fingerprint | None:
        path = Path(stage_dir) / FINGERPRINT
        if not path.is_file():
            return None
        try:
            return cls(json.loads(path.read_text())["values"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{path} is not a run fingerprint: remove {path.parent} to train it again") from None


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def result_overrides(overrides: list[str]) -> list[str]:
    """The command-line overrides that change a stage's result, other than the group choices its path names."""
    kept = []
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key not in NAMED_IN_PATH and determines_result(key):
            kept.append(override)
    return sorted(kept)


def variant_suffix(overrides: list[str]) -> str:
    """`-<6 hex>` naming the result-determining overrides (none: the default directory name)."""
    kept = result_overrides(overrides)
    return "-" + hashlib.sha256("\n".join(kept).encode()).hexdigest()[:6] if kept else ""


def command_line_overrides(root=None) -> list[str]:
    """The task overrides of this Hydra run: from the config being composed (`root.hydra`), else Hydra's singleton;
    none outside a Hydra run (tests compose configs directly)."""
    if root is not None and "hydra" in root:
        return list(root.hydra.overrides.task)
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def stage_dir_name(stage: int | str, batch_name: str) -> str:
    return f"stage{stage}-bs{batch_name}"


def run_dir(runs: str | Path, run_name: str) -> Path:
    return Path(str(runs)) / str(run_name)


def hydra_dir(part: str, root) -> str:
    """Hydra's output directory for a composed training config (`part="path"`): the stage directory, or the run
    directory when the whole curriculum runs (`stage=all`; each stage is its own process with its own directory).
    `part="name"`: the stage directory's name alone (a multirun's subdir)."""
    variant = variant_suffix(command_line_overrides(root))
    if str(root.stage) == ALL_STAGES:
        return f"stage{ALL_STAGES}{variant}" if part == "name" else str(run_dir(root.paths.runs, root.run_name))
    name = stage_dir_name(root.stage, step_batch(root).name) + variant + branch_suffix(root)
    return name if part == "name" else str(run_dir(root.paths.runs, root.run_name) / name)


def branch_suffix(root) -> str:
    """A WSD decay branch trains in a sibling directory named after the checkpoint it branches from
    (`stage4-bs2.5K-decay-step0000400`), so branches from several points live side by side."""
    branch_from = root.get("branch_from")
    return f"-decay-{Path(str(branch_from)).stem}" if branch_from else ""


def stage_config(cfg: DictConfig, key: str, overrides: list[str]) -> DictConfig:
    """The config as `stage=<key>` with the same `overrides` would compose it (a curriculum's stages, the stage an
    `init_from=auto` looks for), its `paths.output_dir` that stage's directory."""
    staged = cfg.copy()
    with open_dict(staged):
        staged.stage = str(key)
        staged.paths.output_dir = str(
            run_dir(cfg.paths.runs, cfg.run_name)
            / (stage_dir_name(key, step_batch(staged).name) + variant_suffix(overrides) + branch_suffix(staged))
        )
    return staged


def checkpoint_dir(stage_dir: Path) -> Path:
    return Path(stage_dir) / "checkpoints"


def finished_stages(run: Path, stage: int) -> dict[Path, Path]:
    """{stage directory: final.ckpt} of every finished run of `stage` under the run directory `run`."""
    found = {}
    for child in sorted(Path(run).glob(f"stage{stage}-bs*")):
        m = _STAGE_DIR.match(child.name)
        final = checkpoint_dir(child) / FINAL
        if m and int(m[1]) == stage and final.is_file():
            found[child] = final
    return found


def auto_init_run(init_from, stage_dir: Path) -> Path | None:
    """The run directory `init_from=auto` (this stage's run) or `init_from=auto:RUN` looks in; None: not auto."""
    text = str(init_from)
    if text == "auto":
        return Path(stage_dir).parent
    return Path(text[len(AUTO_PREFIX) :]) if text.startswith(AUTO_PREFIX) else None


def previous_stage_checkpoint(run: Path, stage: int, wanted: Fingerprint) -> tuple[Path, list[str]]:
    """The final checkpoint of stage N-1 in this run for `init_from=auto`, and how its settings differ from
    `wanted` (stage N-1 as this run would train it): among the finished ones of the same model (a µP stage never
    starts from a non-µP one), the closest in settings; a tie is an error."""
    previous = finished_stages(run, stage - 1)
    if not previous:
        unfinished = [p.name for p in Path(run).glob(f"stage{stage - 1}-bs*")]
        hint = f" ({', '.join(unfinished)} did not finish)" if unfinished else ""
        raise UserError(
            f"stage {stage} starts from stage {stage - 1}, but {run} has no finished stage "
            f"{stage - 1}{hint}: run `python train.py stage={stage - 1}` first, or pass init_from=PATH "
            f"(init_from=none: from scratch)"
        )
    model = {k: v for k, v in wanted.values.items() if k.startswith("model.")}
    candidates = {}
    for directory, final in previous.items():
        recorded = Fingerprint.load(directory)
        if recorded is not None and all(recorded.values.get(k) == v for k, v in model.items()):
            candidates[final] = wanted.differences(recorded)
    if not candidates:
        some = next(iter(previous))
        recorded = Fingerprint.load(some) or Fingerprint()
        raise UserError(
            f"stage {stage} starts from stage {stage - 1}, but no finished stage {stage - 1} in {run} "
            f"has this model ({wanted.describe_differences(recorded, 'here', 'in ' + some.name)}): "
            f"run stage={stage - 1} with the same overrides first, or pass init_from=PATH"
        )
    fewest = min(len(d) for d in candidates.values())
    best = [final for final, d in candidates.items() if len(d) == fewest]
    if len(best) > 1:
        raise UserError(
            f"several finished stage-{stage - 1} runs in {run} are equally close to this one "
            f"({', '.join(p.parent.parent.name for p in best)}): pass init_from=PATH to choose one"
        )
    return best[0], candidates[best[0]]


def mark_final(stage_dir: Path) -> Path:
    """Publish the stage's last checkpoint as final.ckpt (a hard link or copy, then an atomic rename); a sharded one
    is consolidated into one file, the form every reader of final.ckpt takes."""
    from minimath.checkpoint import is_sharded, save_consolidated

    ckpt_dir = checkpoint_dir(stage_dir)
    if is_sharded(ckpt_dir / LAST):
        return save_consolidated(ckpt_dir / LAST, ckpt_dir / FINAL)
    return atomic_publish(ckpt_dir / LAST, ckpt_dir / FINAL)


def check_fingerprint(stage_dir: Path, fingerprint: Fingerprint, overrides: list[str]) -> None:
    """Record `fingerprint` in a new stage directory; one that records another is never reused (an error naming
    the differing keys and the ways forward), nor one holding checkpoints of unknown settings."""
    stage_dir = Path(stage_dir)
    recorded = Fingerprint.load(stage_dir)
    ways = f"pass run_name=NEW for a separate run, or remove {stage_dir} to train it again with these settings"
    if recorded is None:
        if checkpoint_dir(stage_dir).is_dir() and any(checkpoint_dir(stage_dir).iterdir()):
            raise UserError(
                f"{stage_dir} holds checkpoints but no {FINGERPRINT} (trained before runs recorded "
                f"their settings): {ways}"
            )
        fingerprint.save(stage_dir, result_overrides(overrides))
    elif recorded.digest != fingerprint.digest:
        raise UserError(
            f"{stage_dir} was trained with other settings "
            f"({fingerprint.describe_differences(recorded, 'here', 'there')}): {ways}"
        )


@contextmanager
def stage_lock(stage_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the stage directory for the life of the block (and of the process: the kernel drops
    it when the process dies); a second run on the same directory stops at once, naming the holder's PID. The other
    ranks of a multi-process run (which rank 0 starts, holding the lock) share it."""
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank != 0:
        yield
        return
    fd = os.open(stage_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(
                f"{stage_dir} is in use by another run (pid {holder}): wait for it to end, or pass "
                f"run_name=NEW for a separate run"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def remove_if_unused(stage_dir: Path) -> None:
    """Remove a directory that holds only bookkeeping (`BOOKKEEPING`: a run that stopped before its first
    checkpoint), unless another run holds it."""
    from minimath.io import remove_if_only

    stage_dir = Path(stage_dir)
    if not stage_dir.is_dir():
        return
    try:
        with stage_lock(stage_dir):
            remove_if_only(stage_dir, BOOKKEEPING)
    except UserError:
        pass  # another run is using it
