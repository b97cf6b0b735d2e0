"""Instruction pairs as a data source: JiuZhang3.0's knowledge-distillation data (`{"input": prompt, "output":
teacher's text}`), trained with the loss on the output tokens only, or as plain text.

Storage. A pair becomes one document of the ordinary packed shards — prompt ids, output ids, `<|endoftext|>` —
with bit 31 set on every prompt token (`shards.NO_LOSS_BIT`: "never a training target"; ids stay below 2^31).
The mask thus lives inside the token it masks: the mixture's windows, their position addressing, the shard
hashes and the resume position carry it without a second file to keep in step, and text sources, which never
set the bit, keep their shards bit for bit. The datamodule strips the bit and turns those targets into
IGNORE_INDEX; the loss is already normalised by the valid targets. `loss_on: all` writes the same ids without
the bit (JiuZhang3.0 also pre-trains on the pairs as text).

Separation. Pairs are packed like any text, and a stage that trains on them sets `document_mask: true`
(`data.stages.<N>`): its batches then carry each position's document number and the model attends
block-diagonally-causally within documents, with positions restarting at each document
(`model.document_attention`), so a pair computes what it computes alone and never sees its neighbour. This keeps
the packed, position-addressed stream (no padding tokens wasted, no index of document offsets) and leaves
pre-training, which does not set it, on the plain causal kernel.

Split. `split: heldout` keeps the pairs whose prompt hashes below `heldout_fraction`, `split: train` the rest:
the same prompt is always on the same side, so held-out pairs are unseen problems.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from minimath.data.clean import normalize
from minimath.data.formatters import SkipRecord, text
from minimath.data.shards import NO_LOSS_BIT
from minimath.data.sources import FileSource, SourceStats
from minimath.errors import UserError

LOSS_ON = ("output", "all")
SPLITS = ("all", "train", "heldout")


class Pair(NamedTuple):
    prompt: str
    output: str

    @property
    def text(self) -> str:
        return self.prompt + self.output


def normalize_pair(pair: Pair) -> Pair:
    """Both parts as `clean.normalize` leaves text; the prompt keeps the line break that ends it (`## Solution\\n`),
    since the model is given exactly that before it writes the output."""
    tail = pair.prompt[len(pair.prompt.rstrip()) :]
    separator = "\n" * min(2, tail.count("\n")) or (" " if tail else "")
    return Pair(normalize(pair.prompt) + separator, normalize(pair.output))


def in_heldout_split(prompt: str, fraction: float) -> bool:
    digest = hashlib.sha256(prompt.strip().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") / 2**64 < fraction


def masked_prompt(ids: np.ndarray) -> np.ndarray:
    """Prompt ids with `NO_LOSS_BIT` set: they are context, never targets."""
    return ids | np.uint32(NO_LOSS_BIT)


@dataclass
class PairSource:
    """Local jsonl / json / parquet files of instruction pairs (`input_field`, `output_field`); `loss_on: output`
    masks the prompt, `all` trains on the whole text; `split` with `heldout_fraction` takes one side of the
    held-out split. Records without both fields as non-empty text are counted skips."""

    name: str
    paths: list[str]
    format: str = "jsonl"
    input_field: str = "input"
    output_field: str = "output"
    loss_on: str = "output"
    split: str = "all"
    heldout_fraction: float = 0.0
    max_documents: int | None = None

    def __post_init__(self):
        if self.loss_on not in LOSS_ON:
            raise UserError(f"source {self.name}: loss_on must be one of {LOSS_ON}, not {self.loss_on!r}")
        if self.split not in SPLITS:
            raise UserError(f"source {self.name}: split must be one of {SPLITS}, not {self.split!r}")
        if not 0.0 <= float(self.heldout_fraction) < 1.0:
            raise UserError(f"source {self.name}: heldout_fraction must be in [0, 1), not {self.heldout_fraction}")
        self.paths = [self.paths] if isinstance(self.paths, str) else list(self.paths)

    @property
    def mask_prompt(self) -> bool:
        return self.loss_on == "output"

    def _files(self) -> FileSource:
        return FileSource(self.name, self.paths, self.format)

    def input_files(self):
        return self._files().files()

    def provenance(self) -> list[dict]:
        """What made these pairs, for the composition report: the synthesis manifest that `python -m
        minimath.synthesize` writes beside its `data/` and `kd/` shards (teacher, whether it is a stand-in, prompt
        set, examples kept of requests sent), one per directory the inputs come from; empty for other pairs."""
        found = []
        for directory in sorted({f.parent for f in self.input_files()}):
            manifest = directory.parent / "manifest.json"
            try:
                m = json.loads(manifest.read_text(encoding="utf-8"))
                found.append(
                    {
                        "manifest": str(manifest),
                        "teacher": f"{m['teacher']['backend']}: {m['teacher']['model']}",
                        "stand_in": bool(m["teacher"]["stand_in"]),
                        "prompts": m["prompts"],
                        "requests": m["requests"],
                        "examples": m["examples"],
                    }
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

    def _pair(self, record: Any) -> Pair:
        if not isinstance(record, dict):
            raise SkipRecord("record is not an object")
        pair = Pair(text(record, self.input_field), text(record, self.output_field))
        for field, value in zip((self.input_field, self.output_field), pair):
            if not value.strip():
                raise SkipRecord(f"empty field {field!r}")
        return pair

    def _wanted(self, pair: Pair) -> bool:
        if self.split == "all":
            return True
        return in_heldout_split(pair.prompt, float(self.heldout_fraction)) == (self.split == "heldout")

    def documents(self, stats: SourceStats) -> Iterator[tuple[Pair, str]]:
        other_side = "train split" if self.split == "heldout" else "held-out split"
        for record, where in self._files().records(stats):
            if self.max_documents is not None and stats.kept >= self.max_documents:
                return
            stats.read += 1
            try:
                pair = self._pair(record)
            except SkipRecord as err:
                stats.skip(str(err), where)
                continue
            if not self._wanted(pair):
                stats.skip(f"in the {other_side}", where)
                continue
            yield pair, where
