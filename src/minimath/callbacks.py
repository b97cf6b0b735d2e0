"""What runs beside the training step (each configured in conf/callbacks): the metrics logged against tokens seen
(loss, LR, gradient norm, throughput, MFU, per-source loss), step checkpoints with a graceful interrupt, and
progress. The LightningModule trains; these measure, save and report."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy

from minimath import log
from minimath.flops import flops_per_token, mfu, peak_flops
from minimath.io import atomic_publish
from minimath.runs import LAST


def grads_are_sharded(strategy: object) -> bool:
    """Whether each rank holds only its shard of the gradients (FSDP, model-parallel), not a full replica."""
    return isinstance(strategy, (FSDPStrategy, ModelParallelStrategy))


def global_grad_norm(parameters, strategy) -> torch.Tensor:
    """L2 norm of all gradients of the model: under sharding, the square roots of the ranks' summed squares
    (each rank's own norm is of its shard only); replicas (single device, DDP) already hold the whole."""
    local = torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
    if not grads_are_sharded(strategy):
        return local
    return strategy.reduce(local.double().square(), reduce_op="sum").sqrt()


class TrainingMetrics(L.Callback):
    """Every `log_every_n_steps` optimizer steps, with `step = tokens seen` (summed over ranks):
    `train/{loss,lr,grad_norm,tokens_seen,tokens_per_s,step,stage,batch_tokens}`, `train_source/<name>` (mean loss
    per token of each source in the step; `source_names[i]` names the label `i` of `batch["source"]`) and, with a
    peak (`hardware.peak_tflops`: TFLOP/s, `measure`, or null), `perf/{mfu,mfu_output_layer,mfu_total}` from the
    model's FLOPs per token at its context length and the run's precision, over all devices."""

    def __init__(self, source_names: list[str] | None = None, log_every_n_steps: int = 1,
                 peak_tflops: float | str | None = None):
        self.source_names = list(source_names or [])
        self.log_every_n_steps = int(log_every_n_steps)
        self.peak_tflops = peak_tflops
        self._flops = self._peak = None
        self._reset()

    def _reset(self) -> None:
        n = len(self.source_names)
        self._source_loss = torch.zeros(n, dtype=torch.float64)
        self._source_tokens = torch.zeros(n, dtype=torch.float64)

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        self._flops = flops_per_token(pl_module.model_config, pl_module.model_config.max_seq_len)
        peak = peak_flops(self.peak_tflops, str(trainer.precision))
        self._peak = peak * trainer.world_size if peak else None

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._reset()
        self._step, self._tokens, self._time = trainer.global_step, pl_module.tokens_seen, time.perf_counter()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module, optimizer) -> None:
        """Before the module's NaN guard and the clipping: the LR this step uses and the unclipped gradient norm."""
        self._lr = optimizer.param_groups[0]["lr"]
        self._grad_norm = global_grad_norm(pl_module.parameters(), trainer.strategy)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if len(self.source_names) and "source" in batch and outputs is not None:
            device = outputs["sequence_loss"].device
            source = batch["source"].to(device)
            self._source_loss = self._source_loss.to(device).index_add(0, source, outputs["sequence_loss"].double())
            self._source_tokens = self._source_tokens.to(device).index_add(
                0, source, outputs["sequence_tokens"].double())
        if trainer.global_step == self._step:
            return  # a micro-batch inside an optimizer step (gradient accumulation)
        step, self._step = trainer.global_step - 1, trainer.global_step
        now = time.perf_counter()
        elapsed, self._time = now - self._time, now
        step_tokens, self._tokens = pl_module.tokens_seen - self._tokens, pl_module.tokens_seen
        if pl_module.last_step_skipped:
            self._reset()
            return
        sources = None
        if len(self.source_names):  # every rank takes part in the reduction, logging or not
            n = len(self.source_names)
            both = trainer.strategy.reduce(torch.cat([self._source_loss, self._source_tokens]), reduce_op="sum")
            sources = (both[:n], both[n:])
        self._reset()
        if step % self.log_every_n_steps:
            return
        metrics = {
            "train/loss": pl_module.last_loss,
            "train/stage": float(pl_module.stage),
            "train/batch_tokens": float(pl_module.tokens_per_step),
            "train/lr": self._lr,
            "train/grad_norm": float(self._grad_norm),
            "train/tokens_seen": float(pl_module.tokens_seen),
            "train/tokens_per_s": step_tokens / elapsed if elapsed > 0 else 0.0,
            "train/step": float(step),
        }
        if sources is not None:
            metrics.update({f"train_source/{name}": float(sources[0][i] / sources[1][i])
                            for i, name in enumerate(self.source_names) if sources[1][i] > 0})
        if self._peak and elapsed > 0:
            metrics.update({f"perf/{k}": v for k, v in mfu(step_tokens / elapsed, self._flops, self._peak).items()})
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=pl_module.tokens_seen)


class Checkpointing(Checkpoint):
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

    def __init__(self, dirpath: str, every_n_train_steps: int | None = 100, every_minutes: float | None = None,
                 keep_last: int | None = 3, save_on_interrupt: bool = True):
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"callbacks.checkpoint.keep_last={keep_last}: keep at least 1, or null for all")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps, self.every_minutes = every_n_train_steps, every_minutes
        self.keep_last, self.save_on_interrupt = keep_last, save_on_interrupt
        self.interrupted_at: int | None = None
        self._signal: int | None = None
        self._previous_handlers: dict = {}

    def _on_signal(self, signum, frame) -> None:
        if self._signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: abort now
        self._signal = signum
        log.info(f"{signal.Signals(signum).name}: finishing this optimizer step, then saving last.ckpt "
                 f"(Ctrl-C again aborts without saving)")

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._step, self._saved_at = trainer.global_step, time.monotonic()
        if self.save_on_interrupt and threading.current_thread() is threading.main_thread():
            self._previous_handlers = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        for s, handler in self._previous_handlers.items():
            signal.signal(s, handler)
        self._previous_handlers = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._step:
            return  # inside an optimizer step (gradient accumulation)
        self._step = step = trainer.global_step
        due_time = self.every_minutes is not None and time.monotonic() - self._saved_at >= 60 * self.every_minutes
        stop = self._signal is not None
        if trainer.world_size > 1:  # one rank's clock or signal decides for all
            flags = trainer.strategy.reduce(torch.tensor([float(due_time), float(stop)],
                                                         device=pl_module.device), reduce_op="sum")
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
        self._saved_at = time.monotonic()
        if trainer.is_global_zero:
            atomic_publish(path, self.dirpath / LAST)
            if self.keep_last is not None:
                for old in sorted(self.dirpath.glob("step*.ckpt"))[:-self.keep_last]:
                    old.unlink(missing_ok=True)
        trainer.strategy.barrier("checkpoint")


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class Progress(L.Callback):
    """Progress in optimizer steps (not micro-batches): step/total, tokens seen, loss, tokens/s and ETA. On a
    terminal one line rewritten in place; into a file or pipe (nohup, a batch scheduler) a plain line every
    `every_seconds`, through the project's logger, so a stage's log shows where it is while it runs."""

    def __init__(self, every_seconds: float = 30.0, terminal_every_seconds: float = 0.5):
        self.every_seconds, self.terminal_every_seconds = every_seconds, terminal_every_seconds

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._tty = sys.stdout.isatty()
        self._step = self._first_step = trainer.global_step
        self._first_tokens = pl_module.tokens_seen
        self._start = self._shown = time.monotonic()

    def line(self, trainer: L.Trainer, pl_module) -> str:
        done, total = trainer.global_step, trainer.max_steps
        elapsed = time.monotonic() - self._start
        rate = (pl_module.tokens_seen - self._first_tokens) / elapsed if elapsed > 0 else 0.0
        steps_done = done - self._first_step
        eta = elapsed / steps_done * (total - done) if steps_done else float("nan")
        return (f"stage {pl_module.stage} step {done:,}/{total:,} ({100 * done / max(total, 1):.0f}%) | "
                f"{pl_module.tokens_seen:,} tokens | loss {pl_module.last_loss:.4f} | {rate:,.0f} tokens/s | "
                f"elapsed {_duration(elapsed)} | ETA {_duration(eta) if eta == eta else '?'}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._step or not trainer.is_global_zero:
            return
        self._step = trainer.global_step
        now = time.monotonic()
        last = trainer.global_step >= trainer.max_steps
        if self._tty and (now - self._shown >= self.terminal_every_seconds or last):
            sys.stdout.write("\r" + self.line(trainer, pl_module) + ("\n" if last else ""))
            sys.stdout.flush()
            self._shown = now
        elif not self._tty and (now - self._shown >= self.every_seconds or last):
            log.info(self.line(trainer, pl_module))
            self._shown = now

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if self._tty and trainer.is_global_zero and trainer.global_step < trainer.max_steps:
            sys.stdout.write("\n")
