"""The per-stage LightningDataModule: packed sequences of the stage's mixture, labelled with their source.

Its state — sequences consumed so far, counted over all ranks — is saved in every Lightning checkpoint (the
`DataPositionTracker` callback moves it forward as batches are trained on), so a resumed run continues with
exactly the next sequences, with any number of dataloader workers and with a different batch size.

Tokens stored with `NO_LOSS_BIT` (an instruction pair's prompt, `minimath.data.pairs`) become IGNORE_INDEX targets;
a stage with `document_mask: true` also gets each position's document number (`documents`), from which the model
keeps packed documents apart.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from minimath.data.mixture import Mixture, StagePlan, derived_seed
from minimath.data.shards import load_shard, split_flags
from minimath.errors import UserError
from minimath.loss import IGNORE_INDEX


class MixtureBatches(IterableDataset):
    """Micro-batches of the stream from `start`: batch j of rank r holds sequences
    start + (j·world + r)·micro_batch … + micro_batch − 1; dataloader worker w makes batches j ≡ w (mod workers),
    which is the order a DataLoader collects them in. With `eot_id`, a batch also numbers each input position's
    document (a new one starts at every `<|endoftext|>` input)."""

    def __init__(
        self,
        plan: StagePlan,
        start: int,
        micro_batch: int,
        rank: int,
        world: int,
        remap: np.ndarray | None,
        decay_start: int | None = None,
        eot_id: int | None = None,
    ):
        self.plan, self.start, self.micro_batch, self.decay_start = plan, start, micro_batch, decay_start
        self.rank, self.world, self.remap, self.eot_id = rank, world, remap, eot_id

    def batch(self, mixture: Mixture, j: int) -> dict[str, torch.Tensor]:
        first = self.start + (j * self.world + self.rank) * self.micro_batch
        windows, sources = zip(*(mixture.get(first + t) for t in range(self.micro_batch)))
        tokens, no_loss = split_flags(np.stack(windows))
        if self.remap is not None:
            tokens = self.remap[tokens]
        tokens = torch.from_numpy(tokens)
        targets = tokens[:, 1:]
        if no_loss is not None:
            targets = targets.masked_fill(torch.from_numpy(no_loss[:, 1:]), IGNORE_INDEX)
        batch = {
            "input_ids": tokens[:, :-1],
            "targets": targets,
            "source": torch.tensor(sources),
            "position": torch.tensor(self.start + (j + 1) * self.world * self.micro_batch),
        }
        if self.eot_id is not None:
            batch["documents"] = (batch["input_ids"] == self.eot_id).cumsum(dim=1)
        return batch

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        mixture = self.plan.build(decay_start=self.decay_start)
        j = worker
        while True:
            yield self.batch(mixture, j)
            j += workers


class MixtureDataModule(L.LightningDataModule):
    def __init__(
        self,
        plan: StagePlan,
        micro_batch: int,
        num_workers: int = 0,
        remap: np.ndarray | None = None,
        eot_id: int | None = None,
    ):
        """`eot_id`: the model's `<|endoftext|>` id; batches number their documents when the stage sets
        `document_mask` (and `document_rows` needs it)."""
        super().__init__()
        self.plan, self.micro_batch, self.num_workers, self.remap = plan, micro_batch, num_workers, remap
        self.eot_id = eot_id
        self.position = 0
        # the sequence (over all ranks) from which the stage's decay_mix is drawn: set by the run from the LR
        # schedule (`start_decay_mix`), saved in checkpoints; None: the stage's mix throughout
        self.decay_start: int | None = None

    @property
    def seq_len(self) -> int:
        return self.plan.seq_len

    @property
    def source_names(self) -> list[str]:
        return self.plan.source_names

    @property
    def document_mask(self) -> bool:
        """The stage keeps packed documents apart (`data.stages.<N>.document_mask`)."""
        return bool(self.plan.stages[self.plan.stage].get("document_mask", False))

    def document_rows(self, source: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, targets) of a prepared source's first `count` documents, one per row after an
        `<|endoftext|>` (where a packed document starts, at position 0 as under `document_mask`), padded with
        IGNORE_INDEX targets; targets stored with `NO_LOSS_BIT` are IGNORE_INDEX. What a held-out loss is measured
        on: each document alone, whole up to the model's context."""
        if source not in self.plan.sources:
            raise UserError(f"held-out source {source!r} is not prepared (prepared: {sorted(self.plan.sources)})")
        if self.eot_id is None:
            raise ValueError("document_rows needs the datamodule's eot_id")
        rows = []
        for info in self.plan.sources[source]["shards"]:
            ids, no_loss = split_flags(load_shard(Path(self.plan.directory), info)[:])
            ids = self.remap[ids] if self.remap is not None else ids
            targets = ids if no_loss is None else np.where(no_loss, IGNORE_INDEX, ids)
            ends = np.flatnonzero(ids == self.eot_id) + 1
            rows += [(ids[a:b], targets[a:b]) for a, b in zip(np.concatenate([[0], ends[:-1]]), ends)]
            if len(rows) >= count:
                break
        rows = rows[:count]
        width = min(self.seq_len, max(len(r[0]) for r in rows))
        input_ids = torch.full((len(rows), width), self.eot_id, dtype=torch.long)
        targets = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, target) in enumerate(rows):
            n = min(width, len(ids))
            input_ids[i, 1:n] = torch.from_numpy(ids[: n - 1])
            targets[i, :n] = torch.from_numpy(target[:n])
        return input_ids, targets

    def fingerprint(self) -> str:
        used = {n: [s["sha256"] for s in self.plan.sources[n]["shards"]] for n in self.plan.source_names}
        return hex(derived_seed(used, self.plan.stages, self.plan.stage, self.plan.seq_len, self.plan.seed))

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        dataset = MixtureBatches(
            self.plan,
            self.position,
            self.micro_batch,
            rank,
            world,
            self.remap,
            self.decay_start,
            self.eot_id if self.document_mask else None,
        )
        return DataLoader(
            dataset, batch_size=None, num_workers=self.num_workers, persistent_workers=self.num_workers > 0
        )

    def state_dict(self) -> dict:
        return {
            "position": self.position,
            "fingerprint": self.fingerprint(),
            "stage": self.plan.stage,
            "decay_start": self.decay_start,
        }

    def continue_from(self, checkpoint: dict, source: str) -> None:
        """Take up the data position of another run's checkpoint of this same stage (a WSD decay branch continues
        its stable run's stream); a checkpoint of other data is an error."""
        state = checkpoint.get(type(self).__qualname__)
        if not state or state.get("fingerprint") != self.fingerprint():
            raise UserError(
                f"{source} was not trained on this stage's data (stage {self.plan.stage}): a decay "
                f"branch continues its own stable run"
            )
        self.position = int(state["position"])

    def start_decay_mix(self, decay_start_tokens: int | None) -> None:
        """The LR decay begins `decay_start_tokens` into this run (None: the schedule has no decay): the stage's
        decay_mix takes over at that sequence, counted from where this run's data begins (a decay branch: the
        stable run's position)."""
        if not self.plan.has_decay_mix:
            return
        if decay_start_tokens is None:
            raise UserError(
                f"data.stages.{self.plan.stage}.decay_mix is drawn during the LR decay, and this schedule "
                f"has none: use scheduler=wsd (or warmup) with a decay"
            )
        self.decay_start = self.position + int(decay_start_tokens) // self.plan.seq_len

    def load_state_dict(self, state: dict) -> None:
        if state.get("fingerprint") != self.fingerprint():
            rank_zero_warn(
                f"the checkpoint's data (stage {state.get('stage')}) differs from this run's data: "
                f"continuing at sequence {state.get('position', 0)} of the new stream"
            )
        self.position = int(state.get("position", 0))
        if state.get("decay_start") is not None:  # a resumed run keeps the decay phase it was planned with
            self.decay_start = int(state["decay_start"])


class DataPositionTracker(L.Callback):
    """Advances the datamodule's position after each trained batch, so checkpoints hold the exact position."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        dm = trainer.datamodule
        if isinstance(dm, MixtureDataModule) and "position" in batch:
            dm.position = int(batch["position"])
