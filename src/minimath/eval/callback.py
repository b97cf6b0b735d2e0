"""In-training evaluation, logged against tokens seen so the curves line up with the loss curves in TensorBoard:
every N optimizer steps, a small generative eval on held-out synthetic sets (`HeldoutEval`), and the loss on
held-out prepared sources (`HeldoutLoss`: instruction pairs' output tokens only, e.g. `eval/kd_heldout_loss`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol as TypingProtocol

import lightning as L
import torch

from minimath import log
from minimath.callbacks.shared import computes_here
from minimath.data.synth.base import DocumentGenerator
from minimath.eval.runner import Protocol, run_task
from minimath.eval.tasks import as_generator, heldout_task
from minimath.loss import IGNORE_INDEX, lm_loss
from minimath.tokenizer import tokenizer_from_state


class HeldoutEval(L.Callback):
    def __init__(
        self,
        every_n_steps: int,
        generators: Mapping[str, DocumentGenerator | Mapping],
        tasks: list[str] | None = None,
        n: int = 50,
        max_new_tokens: int = 96,
        batch_size: int = 25,
        seed: int = 0,
    ):
        """`generators` (or their configs): the data config's held-out sources (`data.heldout`), so the sets follow
        the training data; `tasks`: which of them (None: all)."""
        self.tasks = [heldout_task(name, n, as_generator(generators[name]), seed) for name in tasks or generators]
        self.every_n_steps = every_n_steps
        self.protocol = Protocol.heldout(max_new_tokens, batch_size, seed)
        self._tokenizer = None

    def _evaluate(self, trainer: L.Trainer, module) -> None:
        if self._tokenizer is None:
            self._tokenizer = tokenizer_from_state(module.hparams.tokenizer)
        was_training = module.model.training
        module.model.eval()
        metrics = {
            f"eval/{task.name}": run_task(module.model, self._tokenizer, task, self.protocol)[0]["accuracy"]
            for task in self.tasks
        }
        module.model.train(was_training)
        log.to_loggers(trainer.loggers, metrics, step=module.tokens_seen)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step and step % self.every_n_steps == 0 and step != getattr(self, "_last", None) and computes_here(trainer):
            self._last = step  # with gradient accumulation the same step ends several micro-batches
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if computes_here(trainer) and trainer.global_step != getattr(self, "_last", None):
            self._evaluate(trainer, pl_module)


class HeldoutDocuments(TypingProtocol):
    """What `HeldoutLoss` reads from the datamodule (`MixtureDataModule`)."""

    def document_rows(self, source: str, count: int) -> tuple[torch.Tensor, torch.Tensor]: ...


class HeldoutLoss(L.Callback):
    """Every `every_n_steps` optimizer steps and at the end, the mean loss per valid target over the first
    `documents` documents of each prepared source in `sources` (each alone, after `<|endoftext|>`; an instruction
    pair's prompt is no target), logged as `eval/<source>_loss`. No sources: nothing runs. `at_start`: also before
    the first update of a run that starts at step 0 (a stage's weights as the previous stage left them: the
    baseline a stage boundary is measured against)."""

    def __init__(
        self,
        every_n_steps: int,
        sources: list[str] | None = None,
        documents: int = 64,
        batch_size: int = 16,
        at_start: bool = False,
    ):
        self.sources = list(sources or [])
        self.every_n_steps, self.documents, self.batch_size = int(every_n_steps), int(documents), int(batch_size)
        self.at_start = bool(at_start)
        self._rows: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._last = None

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        data: HeldoutDocuments = trainer.datamodule
        self._rows = {name: data.document_rows(name, self.documents) for name in self.sources}

    @torch.no_grad()
    def _loss(self, module, input_ids: torch.Tensor, targets: torch.Tensor) -> float:
        total, valid = 0.0, 0
        for start in range(0, len(input_ids), self.batch_size):
            ids = input_ids[start : start + self.batch_size].to(module.device)
            target = targets[start : start + self.batch_size].to(module.device)
            hidden = module.model.hidden_states(ids)
            loss, _ = lm_loss(hidden, module.model.output_weight, target, chunk_bytes=module.loss_chunk_bytes)
            total, valid = total + float(loss), valid + int((target != IGNORE_INDEX).sum())
        return total / max(valid, 1)

    def _evaluate(self, trainer: L.Trainer, module) -> None:
        self._last = trainer.global_step
        was_training = module.model.training
        module.model.eval()
        metrics = {f"eval/{name}_loss": self._loss(module, *rows) for name, rows in self._rows.items()}
        module.model.train(was_training)
        log.to_loggers(trainer.loggers, metrics, step=module.tokens_seen)

    def on_train_start(self, trainer, pl_module) -> None:
        if self.at_start and self._rows and trainer.global_step == 0 and computes_here(trainer):
            self._evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if (
            self._rows and step and step % self.every_n_steps == 0 and step != self._last and computes_here(trainer)
        ):  # with gradient accumulation the same step ends several micro-batches
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._rows and computes_here(trainer) and trainer.global_step != self._last:
            self._evaluate(trainer, pl_module)
