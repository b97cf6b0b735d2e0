"""The run layout: `<runs>/<run_name>/stage<N>-bs<batch>/checkpoints/{last,final}.ckpt`.

A stage directory's name says which stage and which batch setting its checkpoints belong to. `final.ckpt`
appears only when a stage has trained to its end, so the next stage never starts from an unfinished one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from minimath.errors import UserError

_STAGE_DIR = re.compile(r"^stage(\d+)-bs(.+)$")
FINAL = "final.ckpt"
LAST = "last.ckpt"


def stage_dir_name(stage: int, batch_name: str) -> str:
    return f"stage{stage}-bs{batch_name}"


def checkpoint_dir(stage_dir: Path) -> Path:
    return Path(stage_dir) / "checkpoints"


def finished_stages(run_dir: Path, stage: int) -> dict[str, Path]:
    """{batch name: final.ckpt} of every finished run of `stage` under `run_dir`."""
    found = {}
    for child in sorted(Path(run_dir).glob(f"stage{stage}-bs*")):
        m = _STAGE_DIR.match(child.name)
        final = checkpoint_dir(child) / FINAL
        if m and int(m[1]) == stage and final.is_file():
            found[m[2]] = final
    return found


def previous_stage_checkpoint(run_dir: Path, stage: int, batch_name: str) -> Path:
    """The final checkpoint of stage N-1 in this run: the one with the same batch setting if there is one
    (an ablation fork continues its own branch), else the only one."""
    previous = finished_stages(run_dir, stage - 1)
    if batch_name in previous:
        return previous[batch_name]
    if len(previous) == 1:
        return next(iter(previous.values()))
    if not previous:
        unfinished = [p.name for p in Path(run_dir).glob(f"stage{stage - 1}-bs*")]
        hint = f" ({', '.join(unfinished)} did not finish)" if unfinished else ""
        raise UserError(f"stage {stage} starts from stage {stage - 1}, but {run_dir} has no finished stage "
                        f"{stage - 1}{hint}: run `python train.py stage={stage - 1}` first, or pass init_from=PATH "
                        f"(init_from=none: from scratch)")
    raise UserError(f"several finished stage-{stage - 1} runs in {run_dir} ({', '.join(sorted(previous))}): "
                    f"pass init_from=PATH to choose one")


def mark_final(stage_dir: Path) -> Path:
    """Publish the stage's last checkpoint as final.ckpt (a hard link or copy, then an atomic rename)."""
    ckpt_dir = checkpoint_dir(stage_dir)
    last, final, tmp = ckpt_dir / LAST, ckpt_dir / FINAL, ckpt_dir / f".{FINAL}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(last, tmp)
    except OSError:
        tmp.write_bytes(last.read_bytes())
    os.replace(tmp, final)
    return final
