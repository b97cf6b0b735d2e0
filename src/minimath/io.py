"""Atomic file writes: every file the project writes (checkpoints, shards, manifests, reports, eval output) goes to a
temporary name in the target's directory and is renamed over the target, so a crash or SIGKILL mid-write never
leaves a half-file a reader could take for a finished one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a temporary binary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def jsonl_bytes(rows) -> bytes:
    """Records as JSON lines (keys sorted, UTF-8 kept as is): the bytes depend on the records alone."""
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")


def atomic_publish(source: Path, target: Path) -> Path:
    """Make `target` hold `source`'s content under a new name (a hard link, or a copy where links are not allowed;
    a directory, a sharded checkpoint, gets a relative symbolic link), appearing at once through an atomic rename;
    `source` stays."""
    source, target = Path(source), Path(target)
    tmp = target.parent / f".{target.name}.tmp"
    remove_path(tmp)
    if source.is_dir():
        os.symlink(os.path.relpath(source, target.parent), tmp)
    else:
        try:
            os.link(source, tmp)
        except OSError:
            atomic_write_bytes(tmp, source.read_bytes())
    replace_path(tmp, target)
    return target


def remove_path(path: Path) -> None:
    """Remove a file, a link (not what it points to) or a directory tree; nothing there is fine."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def replace_path(source: Path, target: Path) -> None:
    """Rename `source` (a file, link or directory) over `target`. A file or link is replaced atomically; a directory
    in the way is first renamed aside, so `target` is missing only between two renames, never half-written."""
    source, target = Path(source), Path(target)
    if target.is_dir() and not target.is_symlink():
        aside = target.with_name(f".{target.name}.old")
        remove_path(aside)
        os.replace(target, aside)
        os.replace(source, target)
        shutil.rmtree(aside)
    else:
        os.replace(source, target)


def remove_if_only(directory: Path, names: tuple[str, ...]) -> bool:
    """Remove `directory` when everything in it is one of `names` (a run that failed before writing anything:
    Hydra made the directory, with only its config and log inside). Returns whether it was removed."""
    directory = Path(directory)
    if directory.is_dir() and all(p.name in names for p in directory.iterdir()):
        shutil.rmtree(directory, ignore_errors=True)
        return True
    return False
