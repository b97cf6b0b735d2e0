"""Mixed streams of packed sequences, addressed by position.

Sequence `i` of a stage is a pure function of (seed, i): the stream is cut into blocks of `block` sequences,
each block holds every source's exact share (largest-remainder rounding) in a seeded random order, and a
source's k-th draw is window `perm_e[k mod n]` of its epoch `e = k // n` (a fresh seeded permutation per pass).
So the data position is one integer — sequences consumed — and resuming, changing the batch size, or splitting
the stream over DDP ranks and dataloader workers never skips or repeats a sequence.

An entry of a mixture can itself be a mixture (the report's "part of stages 1–2"): its draws are a seeded
random selection of that earlier stage's sequences, labelled with their original sources.

A stage may name a `decay_mix` (same grammar as `mix`): the mixture its LR decay phase draws from (MiniCPM's and
YuLan-Mini's high-quality data mixed in only while the LR decays). From the decay's first sequence on, sequence
`decay_start + j` is the decay mixture's j-th, so the stream stays a pure function of the position.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from minimath.data.shards import load_shard
from minimath.errors import UserError


def derived_seed(*parts) -> int:
    """A 64-bit seed that is a pure function of `parts` (their repr)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def largest_remainder(shares: Sequence[float], total: int) -> np.ndarray:
    """Integer counts summing to `total`, as close as possible to `shares × total`."""
    shares = np.asarray(shares, dtype=np.float64)
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


class TokenWindows:
    """A prepared source as windows of `seq_len + 1` tokens; windows stay inside one shard and consecutive
    windows share one token, so every token but a shard's first is a target exactly once per pass."""

    def __init__(self, shards: Sequence[np.ndarray], seq_len: int, source_id: int, name: str):
        self.shards, self.seq_len, self.source_id, self.name = list(shards), seq_len, source_id, name
        counts = [max(0, (len(s) - 1) // seq_len) for s in self.shards]
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        if self.offsets[-1] == 0:
            raise UserError(
                f"source {name} has no shard of {seq_len + 1} tokens (one training sequence): give it "
                f"more documents, or a smaller model.max_seq_len"
            )

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def get(self, index: int) -> tuple[np.ndarray, int]:
        shard = int(np.searchsorted(self.offsets, index, side="right") - 1)
        start = (index - int(self.offsets[shard])) * self.seq_len
        return self.shards[shard][start : start + self.seq_len + 1], self.source_id


class Mixture:
    """Children (TokenWindows or Mixtures) drawn by `shares`; `length` sequences make one epoch of the mixture."""

    def __init__(self, children: Sequence, shares: Sequence[float], length: int, seed: int, block: int = 1024):
        if len(children) != len(shares) or not children:
            raise ValueError("a mixture needs one share per child and at least one child")
        if any(s <= 0 for s in shares):
            raise ValueError(f"shares must be positive, got {list(shares)}")
        self.children, self.length, self.seed, self.block = list(children), int(length), seed, block
        self.counts = largest_remainder(shares, block)
        self._perm = lru_cache(maxsize=8)(self._permutation)
        self._assignment = lru_cache(maxsize=16)(self._block_assignment)

    def __len__(self) -> int:
        return self.length

    def _block_assignment(self, b: int) -> np.ndarray:
        order = np.repeat(np.arange(len(self.children)), self.counts)
        np.random.default_rng(derived_seed(self.seed, "block", b)).shuffle(order)
        return order

    def _permutation(self, child: int, epoch: int) -> np.ndarray:
        rng = np.random.default_rng(derived_seed(self.seed, "child", child, epoch))
        return rng.permutation(len(self.children[child]))

    def draw(self, index: int) -> tuple[int, int]:
        """(child, k): sequence `index` is the child's k-th draw."""
        b, offset = divmod(index, self.block)
        order = self._assignment(b)
        child = int(order[offset])
        k = b * int(self.counts[child]) + int(np.count_nonzero(order[:offset] == child))
        return child, k

    def get(self, index: int) -> tuple[np.ndarray, int]:
        child, k = self.draw(index)
        n = len(self.children[child])
        epoch, within = divmod(k, n)
        return self.children[child].get(int(self._perm(child, epoch)[within]))


class PhasedMixture:
    """The stage's mixture before `start` (sequences), its decay mixture from there on."""

    def __init__(self, stable: Mixture, decay: Mixture, start: int):
        self.stable, self.decay, self.start = stable, decay, int(start)

    def __len__(self) -> int:
        return len(self.stable)

    def get(self, index: int) -> tuple[np.ndarray, int]:
        return self.stable.get(index) if index < self.start else self.decay.get(index - self.start)


@dataclass
class StagePlan:
    """Everything needed to rebuild a stage's mixture in any process (plain data, cheap to pickle)."""

    directory: str
    sources: dict  # manifest["sources"]
    stages: dict  # {"1": {"tokens":..., "epochs":..., "mix": [{"source"|"stage": ..., "share": ...}]}}
    stage: str
    seq_len: int
    seed: int
    source_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.stage not in self.stages:
            raise UserError(f"stage {self.stage} is not defined in this data config (it has {sorted(self.stages)})")
        self.source_names = sorted(self._leaves(self.stage, ()))

    def _leaves(self, stage: str, seen: tuple) -> set[str]:
        if stage in seen:
            raise UserError(f"stage {stage} includes itself through {' -> '.join(seen)}")
        if str(stage) not in self.stages:
            raise UserError(f"stage {seen[-1]} takes part of stage {stage}, which is not defined")
        names: set[str] = set()
        spec = self.stages[str(stage)]
        entries = list(spec["mix"]) + (list(spec.get("decay_mix") or []) if not seen else [])
        for entry in entries:
            if "stage" in entry:
                names |= self._leaves(str(entry["stage"]), seen + (stage,))
            elif entry["source"] not in self.sources:
                raise UserError(
                    f"stage {stage} uses source {entry['source']!r}, which is not prepared "
                    f"(prepared: {sorted(self.sources)})"
                )
            else:
                names.add(entry["source"])
        return names

    def tokens_per_epoch(self, stage: str | None = None) -> int:
        return int(float(self.stages[stage or self.stage]["tokens"]))

    @property
    def has_decay_mix(self) -> bool:
        return bool(self.stages[self.stage].get("decay_mix"))

    def build(
        self, stage: str | None = None, windows: dict | None = None, decay_start: int | None = None
    ) -> Mixture | PhasedMixture:
        """The stage's mixture; with `decay_start` (sequences) and a `decay_mix`, the decay mixture from there on.
        An earlier stage included in this one contributes its `mix` alone."""
        stage = stage or self.stage
        windows = {} if windows is None else windows
        spec = self.stages[stage]
        stable = self._mixture(stage, spec["mix"], windows, derived_seed(self.seed, "stage", stage))
        if decay_start is None or not spec.get("decay_mix"):
            return stable
        decay = self._mixture(stage, spec["decay_mix"], windows, derived_seed(self.seed, "stage", stage, "decay"))
        return PhasedMixture(stable, decay, decay_start)

    def _mixture(self, stage: str, entries, windows: dict, seed: int) -> Mixture:
        children, shares = [], []
        for entry in entries:
            if "stage" in entry:
                children.append(self.build(str(entry["stage"]), windows))
            else:
                name = entry["source"]
                if name not in windows:
                    shards = [load_shard(Path(self.directory), s) for s in self.sources[name]["shards"]]
                    windows[name] = TokenWindows(shards, self.seq_len, self.source_names.index(name), name)
                children.append(windows[name])
            shares.append(float(entry["share"]))
        length = max(1, self.tokens_per_epoch(stage) // self.seq_len)
        return Mixture(children, shares, length, seed=seed)
