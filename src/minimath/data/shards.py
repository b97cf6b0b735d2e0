"""Packed token shards: raw little-endian uint32 token ids, documents separated by `<|endoftext|>`, plus a
JSON manifest. Every file is written to a temporary name and renamed, so a crash never leaves a half-file
that a reader could take for a finished one; readers check each shard against the manifest.

Bit 31 of an entry (`NO_LOSS_BIT`; token ids stay far below 2^31) marks a token that is never a training target:
an instruction pair's prompt (`minimath.data.pairs`). Text sources never set it, so their shards are plain ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minimath.errors import UserError
from minimath.io import atomic_write_bytes

DTYPE = np.dtype("<u4")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
NO_LOSS_BIT = 1 << 31
ID_MASK = NO_LOSS_BIT - 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ShardInfo:
    file: str
    tokens: int
    documents: int
    sha256: str


@dataclass
class ShardWriter:
    """Accumulates tokenized documents and writes a shard whenever `shard_tokens` is reached."""

    directory: Path
    prefix: str
    eot_id: int
    shard_tokens: int = 1 << 24
    shards: list[ShardInfo] = field(default_factory=list)
    _buffer: list[np.ndarray] = field(default_factory=list)
    _buffered: int = 0
    _docs: int = 0

    def add(self, ids) -> None:
        """One tokenized document (a list or array of ids); `<|endoftext|>` is appended."""
        self._buffer.append(np.asarray(ids, dtype=DTYPE))
        self._buffer.append(np.asarray([self.eot_id], dtype=DTYPE))
        self._buffered += len(ids) + 1
        self._docs += 1
        if self._buffered >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = np.concatenate(self._buffer)
        path = self.directory / f"{self.prefix}_{len(self.shards):05d}.bin"
        atomic_write_bytes(path, data.tobytes())
        self.shards.append(ShardInfo(path.name, int(data.size), self._docs, hashlib.sha256(data.tobytes()).hexdigest()))
        self._buffer, self._buffered, self._docs = [], 0, 0


def split_flags(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Token ids (int64) of shard entries, and where `NO_LOSS_BIT` is set (None when nowhere: text sources)."""
    ids = windows.astype(np.int64)
    no_loss = ids >= NO_LOSS_BIT
    if not no_loss.any():
        return ids, None
    return ids & ID_MASK, no_loss


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise UserError(
            f"no prepared data at {directory} (missing {MANIFEST}): run `python -m minimath.data.prepare data=<config>`"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}): re-run prepare") from None
    if manifest.get("version") != MANIFEST_VERSION:
        raise UserError(f"{path} has manifest version {manifest.get('version')}, expected {MANIFEST_VERSION}")
    return manifest


def load_shard(directory: Path, info: dict, verify_hash: bool = False) -> np.ndarray:
    """Memory-map one shard after checking it against its manifest entry (size, optionally sha256)."""
    path = Path(directory) / info["file"]
    if not path.is_file():
        raise UserError(f"shard {path} listed in the manifest is missing: re-run prepare")
    size = path.stat().st_size
    if size != info["tokens"] * DTYPE.itemsize:
        raise UserError(
            f"shard {path} has {size} bytes but the manifest says {info['tokens']} tokens: "
            f"the data does not match its manifest, re-run prepare"
        )
    if verify_hash and sha256_file(path) != info["sha256"]:
        raise UserError(f"shard {path} does not match the sha256 in its manifest: re-run prepare")
    return np.memmap(path, dtype=DTYPE, mode="r")
