"""Step checkpoints that make any stage resumable, and an interrupt (SIGINT, SIGTERM) that saves its work."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint

from minimath import log
from minimath.callbacks.seam import TrainingState
from minimath.callbacks.shared import StepBoundary
from minimath.errors import INTERRUPTED_STATUS
from minimath.io import atomic_publish, remove_path
from minimath.parallel import writes_directories
from minimath.runs import LAST


class Checkpointing(StepBoundary, Checkpoint):
    """Step checkpoints that make any stage resumable, and an interrupt that saves its work.

    - every `every_n_train_steps` optimizer steps and/or every `every_minutes` of training (so a stage of a few
      long steps is resumable too): `step<N>.ckpt`, published as `last.ckpt` (a hard link), keeping the newest
      `keep_last` step files (null: all);
    - on SIGINT or SIGTERM (what a batch scheduler sends before it kills): the current optimizer step finishes,
      `last.ckpt` is written and the fit stops (`interrupted_at` says at which step); a second SIGINT aborts at
      once. Under DDP the ranks agree on every decision (one small all-reduce per step).
    Writes are atomic (`AtomicCheckpointIO`); being a `Checkpoint`, Lightning runs it after the other callbacks,
    so the data position it saves is the one after the step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(
        self,
        dirpath: str,
        every_n_train_steps: int | None = 100,
        every_minutes: float | None = None,
        keep_last: int | None = 3,
        save_on_interrupt: bool = True,
    ):
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"checkpoint.keep_last={keep_last}: keep at least 1, or null for all")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps, self.every_minutes = every_n_train_steps, every_minutes
        self.keep_last, self.save_on_interrupt = keep_last, save_on_interrupt
        self.interrupted_at: int | None = None
        self._saved_step: int | None = None  # the step last saved
        self._signal: int | None = None
        self._previous_handlers: dict = {}

    def _on_signal(self, signum, frame) -> None:
        if self._signal is not None and signum == signal.SIGINT:  # the second Ctrl-C: abort now, in one line
            message = f"interrupted: aborted at once (second Ctrl-C); {LAST} is the last step checkpoint saved"
            log.to_files(message)
            print(message, file=sys.stderr, flush=True)
            os._exit(INTERRUPTED_STATUS)  # Lightning would catch a KeyboardInterrupt and exit 1 without a word
        self._signal = signum
        if sys.stdout.isatty():
            sys.stdout.write("\n")  # off the in-place progress line
        log.info(
            f"{signal.Signals(signum).name}: finishing this optimizer step, then saving last.ckpt "
            f"(Ctrl-C again aborts without saving)"
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: TrainingState) -> None:
        self._start_counting(trainer)
        self._saved_at = time.monotonic()
        if self.save_on_interrupt and threading.current_thread() is threading.main_thread():
            self._previous_handlers = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}

    def teardown(self, trainer: L.Trainer, pl_module: TrainingState, stage: str) -> None:
        for s, handler in self._previous_handlers.items():
            if signal.getsignal(s) == self._on_signal:  # not when another owner (Lightning) restored its own first
                signal.signal(s, handler)
        self._previous_handlers = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: TrainingState, outputs, batch, batch_idx) -> None:
        if not self._step_ended(trainer):
            return  # inside an optimizer step (gradient accumulation)
        step = trainer.global_step
        due_time = self.every_minutes is not None and time.monotonic() - self._saved_at >= 60 * self.every_minutes
        stop = self._signal is not None
        if trainer.world_size > 1:  # one rank's clock or signal decides for all
            flags = trainer.strategy.reduce(
                torch.tensor([float(due_time), float(stop)], device=trainer.strategy.root_device), reduce_op="sum"
            )
            due_time, stop = bool(flags[0] > 0), bool(flags[1] > 0)
        due_steps = bool(self.every_n_train_steps) and step % self.every_n_train_steps == 0
        if due_steps or due_time or stop:
            self.save(trainer, step)
        if stop:
            self.interrupted_at = step
            trainer.should_stop = True

    def save(self, trainer: L.Trainer, step: int) -> None:
        path = self.dirpath / f"step{step:07d}.ckpt"
        trainer.save_checkpoint(path, weights_only=False)  # the full training state, for resume
        self._saved_at, self._saved_step = time.monotonic(), step
        if trainer.is_global_zero:
            atomic_publish(path, self.dirpath / LAST)
            if self.keep_last is not None:
                for old in sorted(self.dirpath.glob("step*.ckpt"))[: -self.keep_last]:
                    remove_path(old)
        trainer.strategy.barrier("checkpoint")

    def save_last(self, trainer: L.Trainer) -> None:
        """The full state at the end of a fit, as `last.ckpt`: written there (one file), or, where checkpoints are
        sharded directories, as this step's checkpoint published as `last.ckpt` (a directory is never rewritten
        in place; a step saved already is not written twice: at 1.5B with AdamW state that is ~18 GB)."""
        if writes_directories(trainer.strategy):
            if self._saved_step != trainer.global_step:
                self.save(trainer, trainer.global_step)
        else:
            trainer.save_checkpoint(self.dirpath / LAST, weights_only=False)
