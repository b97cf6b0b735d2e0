"""The Hydra side of the entry points: where `conf/` lives, the resolvers the configs use, and the quoting that
lets `stage=3` name a config option."""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf

from minimath.errors import USER_ERROR_STATUS, first_line

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _stage_dir(part: str = "path", *, _root_) -> str:
    from minimath.runs import hydra_dir  # the run layout has one home; imported late to keep this module light

    return hydra_dir(part, _root_)


def batch_tokens(name: str) -> int:
    """Tokens per step of a batch option: `conf/batch/<name>.yaml`, the one place a batch name gets its value;
    a name that is a number of tokens (`3000`) stands for itself."""
    path = CONF_DIR / "batch" / f"{name}.yaml"
    if path.is_file():
        return int(OmegaConf.load(path).tokens_per_step)
    if str(name).isdigit():
        return int(name)
    options = sorted(p.stem for p in path.parent.glob("*.yaml") if p.stem != "stage")
    raise ValueError(f"batch {name!r} is neither one of {options} nor a number of tokens")


def _stage_batch(field: str, *, _root_):
    """`batch=stage` (conf/batch/stage.yaml): the batch the data config names for the selected stage
    (`data.stages.<N>.batch`); None for stage=all, where each stage brings its own."""
    stage = str(_root_.stage.id)
    if stage == "all":
        return None
    name = str(_root_.data.stages[stage].batch)
    return name if field == "name" else batch_tokens(name)


for _name, _resolver in (("minimath.stage_dir", _stage_dir), ("minimath.stage_batch", _stage_batch)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)

# Config groups whose options may be numbers (conf/stage/1.yaml, conf/batch/512.yaml). Hydra parses `stage=3`
# as the int 3 and rejects it as a group choice, so `stage=3` and sweeps like `stage=3,4` are quoted first.
NUMERIC_GROUPS = ("stage", "batch")
_GROUP_CHOICE = re.compile(rf"^(?P<key>[~+]*(?:{'|'.join(NUMERIC_GROUPS)}))=(?P<values>[\w.]+(?:,[\w.]+)*)$")


def quote_numeric_choices(args: list[str]) -> list[str]:
    """`stage=3` -> `stage='3'`, `batch=512,5K` -> `batch='512',5K`; every other argument is left as it is."""
    quoted = []
    for arg in args:
        match = _GROUP_CHOICE.match(arg)
        if match:
            items = match["values"].split(",")
            arg = f"{match['key']}=" + ",".join(f"'{v}'" if v.isdigit() else v for v in items)
        quoted.append(arg)
    return quoted


def run_entry_point(main: Callable[[], None], config_name: str) -> None:
    """Call an entry point's `@hydra.main` function so that a composition error (an unknown option or key, a
    malformed override) is one `error:` line with status 2, as every other user error is. Hydra prints its own
    multi-line report and exits 1 unless HYDRA_FULL_ERROR=1, which makes it raise; a user who set that keeps it."""
    from hydra.errors import ConfigCompositionException, OverrideParseException

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return main()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except (ConfigCompositionException, OverrideParseException) as err:
        print(f"error: {composition_error(err, config_name)}", file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)


def composition_error(err: Exception, config_name: str) -> str:
    """One line for a Hydra composition error: the valid options of a group, or the nearest existing keys."""
    from hydra.errors import MissingConfigException

    text = str(err)
    if isinstance(err, MissingConfigException) and err.options:
        group = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
        choice = f"{group[1]}={group[2]}" if group else first_line(err)
        return f"{choice}: no such option (one of {', '.join(sorted(err.options))})"
    key = re.search(r"Could not override '([^']+)'", text)
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
