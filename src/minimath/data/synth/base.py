"""What every synthetic source shares: seeded documents and validated options."""

from __future__ import annotations

import random
from typing import Iterable, Iterator


def check_subset(name: str, values: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """The option as a tuple, or ValueError naming the allowed values."""
    values, allowed = tuple(values), tuple(allowed)
    if not values or set(values) - set(allowed):
        raise ValueError(f"{name} must be a non-empty subset of {list(allowed)}, got {list(values)}")
    return values


class DocumentGenerator:
    """A source of text documents drawn from a `random.Random`; the same state gives the same documents."""

    def document(self, rng: random.Random) -> str:
        raise NotImplementedError

    def documents(self, rng: random.Random) -> Iterator[str]:
        while True:
            yield self.document(rng)
