"""Command-line helpers shared by the Hydra entry points."""

from __future__ import annotations

import re

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
