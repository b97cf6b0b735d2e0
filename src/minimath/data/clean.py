"""Cleaning: Unicode and whitespace normalisation, length filters, exact and near-duplicate removal."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    """NFC (as Qwen's tokenizer does), Unix newlines, no control or zero-width characters, no trailing spaces,
    at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _shingles(text: str, size: int) -> set[str]:
    compact = re.sub(r"\s+", " ", text.lower())
    return {compact[i : i + size] for i in range(max(1, len(compact) - size + 1))}


@dataclass
class NearDuplicateIndex:
    """MinHash over character shingles with LSH banding: a document whose estimated Jaccard similarity to an
    earlier one is at least about `threshold` is a near duplicate. Deterministic (fixed hash seeds)."""

    num_perm: int = 64
    bands: int = 16
    shingle: int = 5
    threshold: float = 0.8
    _buckets: list[dict] = field(default_factory=list)
    _signatures: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self):
        if self.num_perm % self.bands:
            raise ValueError("num_perm must be a multiple of bands")
        rng = np.random.default_rng(12345)
        self._a = rng.integers(1, 2**61 - 1, self.num_perm, dtype=np.uint64)
        self._b = rng.integers(0, 2**61 - 1, self.num_perm, dtype=np.uint64)
        self._buckets = [{} for _ in range(self.bands)]

    def signature(self, text: str) -> np.ndarray:
        hashes = np.fromiter(
            (
                int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
                for s in _shingles(text, self.shingle)
            ),
            dtype=np.uint64,
        )
        # (a·h + b) with uint64 wrap-around is a cheap family of hash functions; the minimum per function is the
        # MinHash value.
        return (np.outer(hashes, self._a) + self._b).min(axis=0)

    def add_if_new(self, text: str) -> bool:
        """True (and remembered) when `text` is not a near duplicate of an earlier document."""
        sig = self.signature(text)
        rows = self.num_perm // self.bands
        keys = [sig[i * rows : (i + 1) * rows].tobytes() for i in range(self.bands)]
        candidates = {j for band, key in zip(self._buckets, keys) for j in band.get(key, ())}
        for j in candidates:
            if float(np.mean(self._signatures[j] == sig)) >= self.threshold:
                return False
        index = len(self._signatures)
        self._signatures.append(sig)
        for band, key in zip(self._buckets, keys):
            band.setdefault(key, []).append(index)
        return True


@dataclass
class Cleaner:
    """Filters one source's documents; `reason(text)` is None for a kept document, else why it was dropped."""

    min_chars: int = 20
    max_chars: int = 1_000_000
    dedup: bool = True
    near_dedup: bool = False
    near_threshold: float = 0.8
    _seen: set = field(default_factory=set)
    _near: NearDuplicateIndex | None = None

    def __post_init__(self):
        if self.near_dedup:
            self._near = NearDuplicateIndex(threshold=self.near_threshold)

    def reason(self, text: str) -> str | None:
        if not text:
            return "empty document"
        if len(text) < self.min_chars:
            return f"shorter than {self.min_chars} characters"
        if len(text) > self.max_chars:
            return f"longer than {self.max_chars} characters"
        if self.dedup:
            digest = content_hash(text)
            if digest in self._seen:
                return "exact duplicate"
            self._seen.add(digest)
        if self._near is not None and not self._near.add_if_new(text):
            return "near duplicate"
        return None
