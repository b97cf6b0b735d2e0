"""In-training evaluation: every N optimizer steps, a small generative eval on held-out synthetic sets, logged
against tokens seen so accuracy curves line up with the loss curves in TensorBoard."""

from __future__ import annotations

from typing import Mapping

import lightning as L

from minimath.eval.runner import Protocol, run_task
from minimath.data.synth.base import DocumentGenerator
from minimath.eval.tasks import as_generator, heldout_task
from minimath.tokenizer import tokenizer_from_state


class HeldoutEval(L.Callback):
    def __init__(self, every_n_steps: int, generators: Mapping[str, DocumentGenerator | Mapping],
                 tasks: list[str] | None = None, n: int = 50, max_new_tokens: int = 96, batch_size: int = 25,
                 seed: int = 0):
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
        metrics = {f"eval/{task.name}": run_task(module.model, self._tokenizer, task, self.protocol)[0]["accuracy"]
                   for task in self.tasks}
        module.model.train(was_training)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=module.tokens_seen)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step and step % self.every_n_steps == 0 and step != getattr(self, "_last", None) and trainer.is_global_zero:
            self._last = step  # with gradient accumulation the same step ends several micro-batches
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero and trainer.global_step != getattr(self, "_last", None):
            self._evaluate(trainer, pl_module)
