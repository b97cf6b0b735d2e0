"""Training progress in optimizer steps: on a terminal one line rewritten in place, into a file a line at a time."""

from __future__ import annotations

import sys
import time

import lightning as L

from minimath import log
from minimath.callbacks.seam import TrainingState
from minimath.callbacks.shared import StepBoundary


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class Progress(StepBoundary, L.Callback):
    """Progress in optimizer steps (not micro-batches): step/total, tokens seen, loss, tokens/s and ETA. On a
    terminal one line rewritten in place; into a file or pipe (nohup, a batch scheduler) a plain line every
    `every_seconds`, through the project's logger, so a stage's log shows where it is while it runs."""

    def __init__(self, every_seconds: float = 30.0, terminal_every_seconds: float = 0.5):
        self.every_seconds, self.terminal_every_seconds = every_seconds, terminal_every_seconds

    def on_train_start(self, trainer: L.Trainer, pl_module: TrainingState) -> None:
        self._tty = sys.stdout.isatty()
        self._start_counting(trainer)
        self._first_step = trainer.global_step
        self._first_tokens = pl_module.tokens_seen
        self._start = self._shown = time.monotonic()

    def line(self, trainer: L.Trainer, pl_module: TrainingState) -> str:
        done, total = trainer.global_step, trainer.max_steps
        elapsed = time.monotonic() - self._start
        rate = (pl_module.tokens_seen - self._first_tokens) / elapsed if elapsed > 0 else 0.0
        steps_done = done - self._first_step
        eta = elapsed / steps_done * (total - done) if steps_done else float("nan")
        return (
            f"stage {pl_module.stage} step {done:,}/{total:,} ({100 * done / max(total, 1):.0f}%) | "
            f"{pl_module.tokens_seen:,} tokens | loss {pl_module.last_loss:.4f} | {rate:,.0f} tokens/s | "
            f"elapsed {_duration(elapsed)} | ETA {_duration(eta) if eta == eta else '?'}"
        )

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: TrainingState, outputs, batch, batch_idx) -> None:
        if not self._step_ended(trainer) or not trainer.is_global_zero:
            return
        now = time.monotonic()
        last = trainer.global_step >= trainer.max_steps
        if self._tty and (now - self._shown >= self.terminal_every_seconds or last):
            sys.stdout.write("\r" + self.line(trainer, pl_module) + ("\n" if last else ""))
            sys.stdout.flush()
            self._shown = now
        elif not self._tty and (now - self._shown >= self.every_seconds or last):
            log.info(self.line(trainer, pl_module))
            self._shown = now

    def on_train_end(self, trainer: L.Trainer, pl_module: TrainingState) -> None:
        if self._tty and trainer.is_global_zero and trainer.global_step < trainer.max_steps:
            sys.stdout.write("\n")
