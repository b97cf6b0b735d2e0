"""What every synthetic source shares: seeded documents and validated options."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
SPLITS = ("train", "heldout")
HELDOUT_PERCENT = 2  # of the problem space, never generated for training


def check_subset(name: str, values: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """The option as a tuple, or ValueError naming the allowed values."""
    values, allowed = tuple(values), tuple(allowed)
    if not values or set(values) - set(allowed):
        raise ValueError(f"{name} must be a non-empty subset of {list(allowed)}, got {list(values)}")
    return values


def split_of(key: str) -> str:
    """Which split a problem belongs to, from a hash of its text: the same problem is always in the same split,
    so held-out evaluation sets are disjoint from generated training data by construction."""
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:4], "little") % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "train"


def draw_in_split(draw: Callable[[], T], key: Callable[[T], str], split: str, max_tries: int = 100_000) -> T:
    """Draw until the problem falls in `split`."""
    for _ in range(max_tries):
        item = draw()
        if split_of(key(item)) == split:
            return item
    raise ValueError(f"no {split} problem found in {max_tries} draws: the problem space is too small")


class DocumentGenerator:
    """A source of text documents drawn from a `random.Random`; the same state gives the same documents."""

    def document(self, rng: random.Random) -> str:
        raise NotImplementedError

    def documents(self, rng: random.Random) -> Iterator[str]:
        while True:
            yield self.document(rng)
