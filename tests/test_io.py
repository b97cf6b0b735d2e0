"""Atomic writes: a finished file or the previous one, never half of one."""

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
