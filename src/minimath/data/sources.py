"""Where documents come from: Hugging Face datasets (hub ids or local files through `datasets.load_dataset`),
tolerant local files, and the synthetic generators. Every source yields `(text, where)` pairs and counts what it
had to skip in a `SourceStats`, so nothing is dropped silently.
"""

from __future__ import annotations

import glob
import gzip
import json
import random
import tarfile
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from minimath.data.formatters import SkipRecord, get_formatter
from minimath.errors import UserError, first_line
from minimath.jsonio import JsonRecordError, json_records


@dataclass
class SourceStats:
    """Per-source accounting: records read, documents kept, skips by reason with the first offender."""

    name: str
    read: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    first_offender: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.first_offender.setdefault(reason, where)

    def summary(self) -> str:
        parts = [f"{self.name}: read {self.read}, kept {self.kept}"]
        parts += [
            f"skipped {n} ({reason}; first at {self.first_offender[reason]})"
            for reason, n in sorted(self.skipped.items())
        ]
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "read": self.read,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "first_offender": dict(self.first_offender),
        }


def _format(formatter, record: Any, where: str, stats: SourceStats) -> str | None:
    stats.read += 1
    if not isinstance(record, dict):
        stats.skip("record is not an object", where)
        return None
    try:
        return formatter(record)
    except SkipRecord as err:
        stats.skip(str(err), where)
        return None


@dataclass
class HubSource:
    """`datasets.load_dataset(path, name, split=..., data_files=...)`: a hub id, or a builder such as `json` or
    `parquet` with local `data_files`. Streams by default so large corpora are never held in memory."""

    name: str
    path: str
    config_name: str | None = None
    split: str = "train"
    data_files: Any = None
    formatter: str = "text"
    formatter_options: dict = field(default_factory=dict)
    streaming: bool = True
    max_documents: int | None = None

    def input_files(self) -> list[Path]:
        """The local files this source reads (`data_files` patterns that match files here); a hub dataset's
        identity is its config."""
        patterns = self.data_files
        if isinstance(patterns, Mapping):
            patterns = [p for value in patterns.values() for p in ([value] if isinstance(value, str) else value)]
        elif isinstance(patterns, str):
            patterns = [patterns]
        found = {Path(f) for pattern in patterns or [] for f in glob.glob(str(Path(str(pattern)).expanduser()))}
        return sorted(f for f in found if f.is_file())

    def documents(self, stats: SourceStats) -> Iterator[tuple[str, str]]:
        import datasets

        formatter = get_formatter(self.formatter, **dict(self.formatter_options))
        try:
            dataset = datasets.load_dataset(
                self.path, name=self.config_name, split=self.split, data_files=self.data_files, streaming=self.streaming
            )
        except Exception as err:  # datasets raises many types (network, missing files, bad config)
            raise UserError(
                f"source {self.name}: cannot load {self.path!r} ({first_line(err)}); prepare offline "
                f"sources from local files (path=json, data_files=...)"
            ) from None
        for i, record in enumerate(dataset):
            if self.max_documents is not None and stats.kept >= self.max_documents:
                return
            text = _format(formatter, record, f"{self.path}[{i}]", stats)
            if text is not None:
                yield text, f"{self.path}[{i}]"


def _streams(path: Path, stack: ExitStack) -> Iterator[tuple[str, IO[bytes]]]:
    """The byte streams of one file as published, each with the name records are located by: the file itself, a
    `.gz` file decompressed, or each regular member of a `.tar.gz`/`.tgz` archive (`archive!member`)."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        archive = stack.enter_context(tarfile.open(path, "r:gz"))
        for member in archive:  # streamed in archive order, never extracted to disk
            if member.isfile():
                yield f"{path}!{member.name}", stack.enter_context(archive.extractfile(member))
    elif name.endswith(".gz"):
        yield str(path), stack.enter_context(gzip.open(path, "rb"))
    else:
        yield str(path), stack.enter_context(open(path, "rb"))


def _json_records(path: Path | str, data: bytes, stats: SourceStats) -> Iterator[tuple[Any, str]]:
    """A JSON array, or concatenated objects; the rest of a broken file cannot be re-synchronised reliably."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        stats.read += 1
        stats.skip("not UTF-8", f"{path} byte {err.start}")
        return
    try:
        yield from ((record, f"{path}[{i}]") for i, record in enumerate(json_records(text)))
    except JsonRecordError as err:
        stats.read += 1
        stats.skip("malformed JSON", f"{path}:{err.line}")


@dataclass
class FileSource:
    """Local files read tolerantly: `jsonl` (one record per line), `json` (array or concatenated objects),
    `txt` (one document per file, or per blank-line-separated paragraph), `parquet` (through `datasets`). A jsonl,
    json or txt file may be compressed as it is published: `.gz` (MathPile, MNBVC) or a `.tar.gz`/`.tgz` archive,
    each member read in turn (WanJuan-1.0's `part-*.jsonl.tar.gz`)."""

    name: str
    paths: list[str]
    format: str = "jsonl"
    formatter: str = "text"
    formatter_options: dict = field(default_factory=dict)
    txt_split: str = "file"  # file | paragraph
    max_documents: int | None = None

    def files(self) -> list[Path]:
        found = sorted({Path(p) for pattern in self.paths for p in glob.glob(str(Path(pattern).expanduser()))})
        if not found:
            raise UserError(f"source {self.name}: no files match {list(self.paths)}")
        return found

    def input_files(self) -> list[Path]:
        return self.files()

    def _records(self, path: Path, stats: SourceStats) -> Iterator[tuple[Any, str]]:
        if self.format == "parquet":
            import datasets

            rows = datasets.load_dataset("parquet", data_files=[str(path)], split="train", streaming=True)
            yield from ((rec, f"{path}[{i}]") for i, rec in enumerate(rows))
            return
        if self.format not in ("jsonl", "json", "txt"):
            raise UserError(f"source {self.name}: format must be jsonl, json, txt or parquet, not {self.format!r}")
        with ExitStack() as stack:
            for where, stream in _streams(path, stack):
                yield from self._stream_records(where, stream, stats)

    def _stream_records(self, where: str, stream: IO[bytes], stats: SourceStats) -> Iterator[tuple[Any, str]]:
        if self.format == "jsonl":  # line by line: a published file can be many GB
            for lineno, raw in enumerate(stream, start=1):
                if not raw.strip():
                    continue
                try:
                    yield json.loads(raw.decode("utf-8")), f"{where}:{lineno}"
                except UnicodeDecodeError:
                    stats.read += 1
                    stats.skip("not UTF-8", f"{where}:{lineno}")
                except json.JSONDecodeError:
                    stats.read += 1
                    stats.skip("malformed JSON", f"{where}:{lineno}")
        elif self.format == "json":
            yield from _json_records(where, stream.read(), stats)
        else:
            try:
                content = stream.read().decode("utf-8")
            except UnicodeDecodeError as err:
                stats.read += 1
                stats.skip("not UTF-8", f"{where} byte {err.start}")
                return
            pieces = content.split("\n\n") if self.txt_split == "paragraph" else [content]
            yield from (({"text": p}, f"{where}#{i}") for i, p in enumerate(pieces))

    def records(self, stats: SourceStats) -> Iterator[tuple[Any, str]]:
        """Every record of every file, in order, with where it is; unreadable ones are counted in `stats`."""
        for path in self.files():
            yield from self._records(path, stats)

    def documents(self, stats: SourceStats) -> Iterator[tuple[str, str]]:
        formatter = get_formatter(self.formatter, **dict(self.formatter_options))
        for record, where in self.records(stats):
            if self.max_documents is not None and stats.kept >= self.max_documents:
                return
            text = _format(formatter, record, where, stats)
            if text is not None:
                yield text, where


@dataclass
class SyntheticSource:
    """`documents` documents from a seeded generator (`minimath.data.synth`)."""

    name: str
    generator: Any
    documents_count: int
    seed: int = 0

    def documents(self, stats: SourceStats) -> Iterator[tuple[str, str]]:
        rng = random.Random(f"{self.name}-{self.seed}")
        for i, text in enumerate(self.generator.documents(rng)):
            if i >= self.documents_count:
                return
            stats.read += 1
            yield text, f"{self.name}#{i}"
