"""Pack tokenized documents into fixed-length training sequences."""

from __future__ import annotations

from typing import Iterable, Iterator

import torch


def pack_documents(docs: Iterable[list[int]], seq_len: int, eot_id: int) -> Iterator[dict[str, torch.Tensor]]:
    """Concatenate documents, each followed by `<|endoftext|>`, and cut windows of `seq_len + 1` tokens.

    Consecutive windows share one token (the last target of one window is the first input of the next), so
    no token is skipped as a prediction target. Yields `input_ids` and `targets` (inputs shifted by one).
    """
    buffer: list[int] = []
    for doc in docs:
        buffer.extend(doc)
        buffer.append(eot_id)
        while len(buffer) > seq_len:
            window = torch.tensor(buffer[: seq_len + 1], dtype=torch.long)
            del buffer[:seq_len]
            yield {"input_ids": window[:-1], "targets": window[1:]}
