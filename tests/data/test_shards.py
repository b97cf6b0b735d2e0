import json
import os

import numpy as np
import pytest

from minimath.data.shards import DTYPE, ShardWriter, load_shard, read_manifest
from minimath.errors import UserError
from minimath.io import atomic_write_bytes


def test_writer_splits_into_shards_with_eot(tmp_path):
    writer = ShardWriter(tmp_path, "src", eot_id=99, shard_tokens=6)
    for doc in ([1, 2], [3, 4, 5], [6]):
        writer.add(doc)
    writer.flush()
    data = [np.fromfile(tmp_path / s.file, dtype=DTYPE).tolist() for s in writer.shards]
    assert data == [[1, 2, 99, 3, 4, 5, 99], [6, 99]]
    assert [s.documents for s in writer.shards] == [2, 1]
    assert all(load_shard(tmp_path, vars(s), verify_hash=True).tolist() == d for s, d in zip(writer.shards, data))


def test_atomic_write_leaves_no_half_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "shard.bin"
    atomic_write_bytes(target, b"old")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new data")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]  # the temporary file was removed


def test_shard_that_does_not_match_its_manifest(tmp_path):
    writer = ShardWriter(tmp_path, "src", eot_id=0, shard_tokens=100)
    writer.add([1, 2, 3])
    writer.flush()
    info = vars(writer.shards[0])
    with open(tmp_path / info["file"], "r+b") as f:  # truncated: half a shard
        f.truncate(8)
    with pytest.raises(UserError, match="does not match its manifest"):
        load_shard(tmp_path, info)
    (tmp_path / info["file"]).write_bytes(np.array([9, 9, 9, 9], dtype=DTYPE).tobytes())  # same size, other data
    with pytest.raises(UserError, match="sha256"):
        load_shard(tmp_path, info, verify_hash=True)
    (tmp_path / info["file"]).unlink()
    with pytest.raises(UserError, match="missing"):
        load_shard(tmp_path, info)


def test_manifest_errors(tmp_path):
    with pytest.raises(UserError, match="no prepared data"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 0}))
    with pytest.raises(UserError, match="version"):
        read_manifest(tmp_path)
