"""The Hydra side of the entry points: where `conf/` lives, the resolvers the configs use, and the quoting that
lets `stage=3` name a config option."""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import OmegaConf

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
