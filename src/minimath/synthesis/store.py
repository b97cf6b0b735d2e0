"""The answer cache: every teacher answer a synthesis run has paid for, keyed by `Request.cache_key` — (backend,
model, prompt text, sampling settings, sample index) — so a rerun, an interrupted run or another run asking the
same question never calls the teacher twice.

Storage is append-only JSON lines (`answers-<n>.jsonl`), flushed and fsynced every few answers. A SIGKILL can
leave at most one torn last line; opening the cache cuts it off (and says so), so everything before it is kept
and the torn request is simply asked again. Only answers are cached: a request that failed (HTTP errors after
retries, a timeout) is not, so the next run retries it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from minimath.synthesis.records import Completion

ANSWER_FIELDS = ("text", "tokens_in", "tokens_out", "seconds", "finish_reason")


class AnswerCache:
    """{cache key: answer record} over the `answers-*.jsonl` files of `directory`; new answers go to a new file
    per process so that two runs sharing a cache never interleave partial lines."""

    def __init__(self, directory: Path, flush_every: int = 16):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.flush_every = max(1, int(flush_every))
        self.torn: list[str] = []
        self._answers: dict[str, dict] = {}
        for path in sorted(self.directory.glob("answers-*.jsonl")):
            self._load(path)
        self._file: IO[bytes] | None = None
        self._pending = 0

    def _load(self, path: Path) -> None:
        data = path.read_bytes()
        end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # a torn last line: the process died while writing it
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            self._answers[record["key"]] = record
            end += len(line)
        if end < len(data):
            self.torn.append(f"{path.name}: {len(data) - end} bytes after the last complete answer")
            with open(path, "r+b") as f:
                f.truncate(end)

    def __len__(self) -> int:
        return len(self._answers)

    def __contains__(self, key: str) -> bool:
        return key in self._answers

    def get(self, key: str) -> dict | None:
        return self._answers.get(key)

    def _open(self) -> IO[bytes]:
        n = len(list(self.directory.glob("answers-*.jsonl")))
        while self._file is None:
            try:  # exclusive creation: two runs starting at once never share a file
                self._file = open(self.directory / f"answers-{n:05d}.jsonl", "xb")
            except FileExistsError:
                n += 1
        return self._file

    def put(self, key: str, completion: Completion) -> dict:
        """Record a successful answer (failures are never cached)."""
        assert completion.ok, completion.failure
        record = {"key": key, **{f: getattr(completion, f) for f in ANSWER_FIELDS}}
        self._answers[key] = record
        self._open().write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        self._pending += 1
        if self._pending >= self.flush_every:
            self.flush()
        return record

    def flush(self) -> None:
        if self._file is not None and self._pending:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._pending = 0

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def records(self) -> Iterator[dict]:
        yield from self._answers.values()
