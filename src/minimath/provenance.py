"""Where a run's numbers came from: each training session of a stage appends one record to the stage directory's
`provenance.json` — the git commit (and whether the tree had uncommitted changes), the precision the run resolved and
why, the machine (CPU, AMX, AVX512-BF16, torch, threads) and when it started. A stage resumed on another machine or
in another precision keeps both records, so a report can say the run was mixed instead of quoting one machine.

Reports (`minimath.report`) read it back; a directory trained before it existed has no record, which reports say.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from minimath.io import atomic_write_json

PROVENANCE = "provenance.json"
REPO = Path(__file__).resolve().parents[2]  # src/minimath/provenance.py -> the checkout


def git_commit(repo: Path = REPO) -> dict:
    """{"commit": the checkout's HEAD, "dirty": uncommitted changes to tracked files}; "unknown" outside a git
    checkout (an installed wheel)."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def session_record(precision: str, precision_reason: str) -> dict:
    from minimath.hardware import machine_facts

    return {
        **git_commit(),
        "precision": precision,
        "precision_reason": precision_reason,
        **machine_facts(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def record(stage_dir: Path, precision: str, precision_reason: str) -> dict:
    """Append this session's record to `stage_dir/provenance.json` (atomically) and return it."""
    entry = session_record(precision, precision_reason)
    sessions = read(stage_dir)
    atomic_write_json(Path(stage_dir) / PROVENANCE, {"sessions": [*sessions, entry]})
    return entry


def read(stage_dir: Path) -> list[dict]:
    """The session records of a stage directory, oldest first ([] when it has none)."""
    path = Path(stage_dir) / PROVENANCE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text())["sessions"])


FACTS = ("commit", "dirty", "precision", "cpu", "amx", "avx512_bf16", "torch", "threads")


def summary(sessions: list[dict]) -> dict:
    """One value per fact over a run's sessions: the value when every session agrees, else "mixed: a, b"; a run
    with no record says "not recorded" for each."""
    if not sessions:
        return dict.fromkeys(FACTS, "not recorded")
    out = {}
    for fact in FACTS:
        values = list(dict.fromkeys(json.dumps(s.get(fact)) for s in sessions))
        out[fact] = json.loads(values[0]) if len(values) == 1 else "mixed: " + ", ".join(values)
    return out
