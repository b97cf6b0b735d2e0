"""The Hydra side of the entry points: where `conf/` lives, the resolvers the configs use, what `stage=` and
`batch=` select, and one-line composition errors."""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from minimath.errors import USER_ERROR_STATUS, JobFailed, UserError, first_line

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _stage_dir(part: str = "path", *, _root_) -> str:
    from minimath.runs import hydra_dir  # the run layout has one home; imported late to keep this module light

    return hydra_dir(part, _root_)


def register_resolvers() -> None:
    """The resolvers the training config uses (`minimath.stage_dir`: Hydra's run directory). Called by the entry
    points before they compose; registering twice is harmless. Resolvers read the composed config only."""
    if not OmegaConf.has_resolver("minimath.stage_dir"):
        OmegaConf.register_new_resolver("minimath.stage_dir", _stage_dir)
    if not OmegaConf.has_resolver("minimath.parallel_jobs"):
        OmegaConf.register_new_resolver("minimath.parallel_jobs", parallel_jobs)


def parallel_jobs(threads: int | None, cores: int | None = None) -> int:
    """How many sweep jobs run at once so that jobs × threads fills this machine's cores without oversubscribing
    them (two 2-thread trainings on 2 cores each ran ~8× slower): one job with every core when `threads` is unset."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // int(threads)) if threads else 1


ALL_STAGES = "all"  # stage=all: the whole curriculum
STAGE_BATCH = "stage"  # batch=stage: the batch the data config names for the stage


@dataclass(frozen=True)
class StepBatch:
    """The batch a stage trains with: its name (in directory names and tables) and its tokens per optimizer step."""

    name: str
    tokens_per_step: int


def batch_tokens(name: str, sizes) -> int:
    """Tokens per step of a batch name: an entry of `batch_sizes` (conf/config.yaml), the one place a batch name
    gets its value; a name that is a number of tokens (`3000`) stands for itself."""
    if name in sizes:
        return int(sizes[name])
    if str(name).isdigit() and int(name) > 0:
        return int(name)
    raise UserError(f"batch={name} is neither one of {', '.join(sizes)} nor a number of tokens per step")


def stage_key(cfg) -> str:
    """`stage`: `all`, or the key of a stage of the data config (`3`)."""
    stage = str(cfg.stage)
    if stage != ALL_STAGES and stage not in cfg.data.stages:
        raise UserError(
            f"stage={stage} is not a stage of data={cfg.data.name} (it has "
            f"{', '.join(map(str, cfg.data.stages))}; or stage=all)"
        )
    return stage


def step_batch(cfg) -> StepBatch:
    """The selected stage's batch: `batch=` a name of `batch_sizes`, a number of tokens per step, or `stage` (the
    batch the data config names for the stage, `data.stages.<N>.batch`: the report steps it 10x from stage 3 on)."""
    name = str(cfg.batch)
    if name == STAGE_BATCH:
        stage = stage_key(cfg)
        if stage == ALL_STAGES:
            raise UserError("batch=stage with stage=all: each stage brings its own batch (choose a stage)")
        name = str(cfg.data.stages[stage].batch)
    return StepBatch(name, batch_tokens(name, cfg.batch_sizes))


def run_entry_point(main: Callable[[], None], config_name: str) -> None:
    """Call an entry point's `@hydra.main` function so that a composition error (an unknown option or key, a
    malformed override) is one `error:` line with status 2, as every other user error is. Hydra prints its own
    multi-line report and exits 1 unless HYDRA_FULL_ERROR=1, which makes it raise; a user who set that keeps it."""
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from omegaconf.errors import InterpolationResolutionError

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return main()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except JobFailed as err:  # the sweep's other jobs ran; each job's directory says how it ended
        print(f"error: a job of the sweep failed ({err}); the other jobs ran to their end", file=sys.stderr)
        sys.exit(err.status)
    except (ConfigCompositionException, OverrideParseException) as err:
        print(f"error: {composition_error(err, config_name)}", file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)
    except InterpolationResolutionError as err:  # Hydra resolving its run directory: a bad stage= or batch=
        cause = user_error_within(err)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)


def user_error_within(err: BaseException) -> UserError | None:
    """The `UserError` an exception was raised from or while handling (OmegaConf wraps a resolver's errors)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


# Options that were renamed: still accepted, with a line naming the new one.
DEPRECATED_CHOICES = {("scheduler", "warmup"): "scheduler=wsd_linear"}


def warn_deprecated_choices() -> None:
    """One line for each deprecated group option this Hydra run chose (none outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    from minimath import log

    if not HydraConfig.initialized():
        return
    choices = HydraConfig.get().runtime.choices
    for (group, old), new in DEPRECATED_CHOICES.items():
        if choices.get(group) == old:
            log.info(f"{group}={old} is deprecated: it is {new} (the same settings)")


# Keys that moved: the old spelling is answered with the new one.
RENAMED = {
    "scheduler.decay_from": "branch_from=PATH (and scheduler.decay_tokens=N)",
    "stage.id": "stage=N",
    "batch.name": "batch=NAME",
    "batch.tokens_per_step": "batch=N (tokens per step)",
    "callbacks.checkpoint.every_n_train_steps": "checkpoint.every_n_train_steps",
    "callbacks.checkpoint.every_minutes": "checkpoint.every_minutes",
    "callbacks.checkpoint.keep_last": "checkpoint.keep_last",
}


def composition_error(err: Exception, config_name: str) -> str:
    """One line for a Hydra composition error: the valid options of a group, or the nearest existing keys."""
    from hydra.errors import MissingConfigException

    text = str(err)
    if isinstance(err, MissingConfigException) and err.options:
        group = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
        choice = f"{group[1]}={group[2]}" if group else first_line(err)
        return f"{choice}: no such option (one of {', '.join(sorted(err.options))})"
    merging = re.match(r"Error merging override (\S+)", text)
    if merging and err.__cause__ is not None:  # the schema refused a value (minimath.schema)
        return f"{merging[1]}: {first_line(err.__cause__)}"
    key = re.search(r"Could not override '([^']+)'", text)
    if key and key[1] in RENAMED:
        return f"{key[1]} was renamed: use {RENAMED[key[1]]}"
    if key:
        near = nearest_keys(key[1], config_name)
        hint = f": did you mean {' or '.join(near)}?" if near else f" (to add a new key: +{key[1]}=...)"
        return f"{key[1]} is not a config key{hint}"
    return first_line(err)


def nearest_keys(key: str, config_name: str, n: int = 2) -> list[str]:
    """The keys of the default `config_name` closest to `key`: those with the same last name first."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # the failed composition left it initialized
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        tree = OmegaConf.to_container(compose(config_name=config_name), resolve=False)
    leaf = key.rsplit(".", 1)[-1]

    def closeness(k: str) -> float:
        return difflib.SequenceMatcher(None, key, k).ratio()

    near = [k for k in _dotted_keys(tree) if k.rsplit(".", 1)[-1] == leaf or closeness(k) > 0.7]
    return sorted(near, key=lambda k: (k.rsplit(".", 1)[-1] != leaf, -closeness(k)))[:n]


def _dotted_keys(tree: dict, prefix: str = ""):
    for k, v in tree.items():
        yield f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _dotted_keys(v, f"{prefix}{k}.")
