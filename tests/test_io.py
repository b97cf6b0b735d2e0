"""Atomic writes: a finished file or the previous one, never half of one."""

import os

import pytest

from minimath.io import atomic_publish, atomic_write, atomic_write_bytes, atomic_write_json


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"first")

    def crash(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_json_is_utf8_and_ends_with_a_newline(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"答": 1})
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == '{\n "答": 1\n}\n'


def test_publish_links_or_copies_under_the_new_name(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"weights")
    (tmp_path / "final.ckpt").write_bytes(b"stale")
    assert atomic_publish(tmp_path / "last.ckpt", tmp_path / "final.ckpt").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final.ckpt", "last.ckpt"]


def test_publishing_a_directory_links_it_relatively_and_replaces_an_older_link_or_directory(tmp_path):
    from minimath.io import replace_path

    for step in ("step1", "step2"):
        (tmp_path / step).mkdir()
        (tmp_path / step / "shard").write_text(step)
    atomic_publish(tmp_path / "step1", tmp_path / "last")
    assert os.readlink(tmp_path / "last") == "step1"  # relative: the run directory can move
    atomic_publish(tmp_path / "step2", tmp_path / "last")
    assert (tmp_path / "last" / "shard").read_text() == "step2" and (tmp_path / "step1").is_dir()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "shard").write_text("new")
    replace_path(tmp_path / "new", tmp_path / "step2")  # a directory over a directory
    assert (tmp_path / "step2" / "shard").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "step1", "step2"]  # nothing left aside
