"""Decontamination: drop training documents that share an n-gram with an evaluation item.

Text is cut into units — words for alphabetic scripts, single characters for CJK, numbers as whole units — so
that one rule serves English and Chinese. An evaluation set is a local file (jsonl/json) and the fields whose
text is protected (e.g. GSM8K's `question`, Math23k's `original_text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from minimath.data.sources import FileSource, SourceStats
from minimath.errors import UserError

_UNITS = re.compile(r"[\u4e00-\u9fff]|[^\W\d_]+|\d+(?:\.\d+)?", re.UNICODE)


def units(text: str) -> list[str]:
    return _UNITS.findall(text.lower())


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    u = units(text)
    if len(u) < n:
        return {tuple(u)} if u else set()
    return {tuple(u[i : i + n]) for i in range(len(u) - n + 1)}


@dataclass
class Decontaminator:
    n: int = 13
    index: dict[tuple[str, ...], str] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def add_eval_texts(self, name: str, texts: Iterable[str]) -> None:
        for text in texts:
            for gram in ngrams(text, self.n):
                self.index.setdefault(gram, name)

    def add_eval_file(self, name: str, path: str, fields: list[str], format: str = "jsonl") -> None:
        stats = SourceStats(name)
        source = FileSource(name, [path], format=format, formatter="text", formatter_options={"field": fields[0]})
        records = [rec for file in source.files() for rec, _ in source._records(file, stats)]
        if not records:
            raise UserError(f"evaluation set {name}: {path} holds no records to decontaminate against")
        self.add_eval_texts(name, (str(r.get(f, "")) for r in records if isinstance(r, dict) for f in fields))

    def contaminated_by(self, text: str) -> str | None:
        """The evaluation set a document overlaps, or None."""
        if not self.index:
            return None
        for gram in ngrams(text, self.n):
            if gram in self.index:
                hit = self.index[gram]
                self.removed[hit] = self.removed.get(hit, 0) + 1
                return hit
        return None
