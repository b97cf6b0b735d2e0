"""A LightningDataModule that streams packed sequences from a document source.

A source is any object with `documents(rng) -> Iterator[str]` (synthetic generators now; the mixture of real
and synthetic sources plugs in here). Every (DDP rank, dataloader worker) pair draws from its own seeded
stream, so no two of them produce the same sequence.
"""

from __future__ import annotations

import random
from itertools import islice
from typing import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from minimath.data.packing import pack_documents
from minimath.tokenizer import TokenizerLike


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class PackedStream(IterableDataset):
    def __init__(self, source, tokenizer: TokenizerLike, seq_len: int, seed: int):
        self.source, self.tokenizer, self.seq_len, self.seed = source, tokenizer, seq_len, seed

    def stream_seed(self) -> tuple[int, int, int]:
        rank, _ = _rank_and_world()
        info = get_worker_info()
        return (self.seed, rank, info.id if info else 0)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = random.Random(repr(self.stream_seed()))
        docs = (self.tokenizer.encode(text) for text in self.source.documents(rng))
        return pack_documents(docs, self.seq_len, self.tokenizer.eot_id)


class StreamDataModule(L.LightningDataModule):
    def __init__(self, source, seq_len: int, micro_batch: int, seed: int, num_workers: int = 0,
                 vocab_sample_docs: int = 2000):
        super().__init__()
        self.source = source
        self.seq_len, self.micro_batch, self.seed = seq_len, micro_batch, seed
        self.num_workers, self.vocab_sample_docs = num_workers, vocab_sample_docs
        self.tokenizer: TokenizerLike | None = None

    def vocab_corpus(self) -> Iterator[str]:
        """Documents a compact vocabulary is built from: a sample from a stream no rank trains on."""
        return islice(self.source.documents(random.Random(f"vocab-{self.seed}")), self.vocab_sample_docs)

    def set_tokenizer(self, tokenizer: TokenizerLike) -> None:
        self.tokenizer = tokenizer

    def train_dataloader(self) -> DataLoader:
        if self.tokenizer is None:
            raise RuntimeError("call set_tokenizer() before training")
        dataset = PackedStream(self.source, self.tokenizer, self.seq_len, self.seed)
        return DataLoader(dataset, batch_size=self.micro_batch, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)
