"""Test helpers importable from subprocesses (PYTHONPATH=tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L


class RankProbe(L.Callback):
    """Writes, per rank, a hash of every batch it trained on and a checksum of the final weights."""

    def __init__(self, out_dir: str):
        self.out_dir, self.batches = Path(out_dir), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(hashlib.sha1(batch["input_ids"].cpu().numpy().tobytes()).hexdigest())

    def on_train_end(self, trainer, pl_module):
        weights = hashlib.sha1(b"".join(p.detach().cpu().numpy().tobytes() for p in pl_module.parameters()))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(
            json.dumps({"batches": self.batches, "weights": weights.hexdigest(), "world": trainer.world_size})
        )
