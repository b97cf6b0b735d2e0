"""Decontamination: drop training documents that share an n-gram with an evaluation item.

Text is cut into units — words for alphabetic scripts, single characters for CJK, numbers as whole units — so
that one rule serves English and Chinese. Which evaluation items are indexed, and what text of each, is decided by
`minimath.data.eval_sets` (the task registry, or files listed by hand).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    """An index of the n-grams of evaluation items, each with the evaluation sets that hold it."""

    n: int = 13
    names: list[str] = field(default_factory=list)  # the indexed sets, in the order they were added
    index: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    # One tuple object per combination of sets: millions of n-grams share a handful of them.
    _combinations: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict, repr=False)

    def add_eval_texts(self, name: str, texts: Iterable[str]) -> tuple[int, int]:
        """Index the items of evaluation set `name`; returns (items, items shorter than n units). A short item is
        one n-gram of its own length, so only a document that is the item alone matches it."""
        self.names.append(name)
        items = short = 0
        for text in texts:
            items += 1
            short += len(units(text)) < self.n
            for gram in ngrams(text, self.n):
                held = self.index.get(gram, ())
                if name not in held:
                    combination = (*held, name)
                    self.index[gram] = self._combinations.setdefault(combination, combination)
        return items, short

    def contaminated_by(self, text: str) -> tuple[str, ...]:
        """Every evaluation set a document shares an n-gram with, in the order they were added; () when none."""
        if not self.index:
            return ()
        hits = {name for gram in ngrams(text, self.n) for name in self.index.get(gram, ())}
        return tuple(name for name in self.names if name in hits)
