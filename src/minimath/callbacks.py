"""What runs beside the training step (each configured in conf/callbacks): the metrics logged against tokens seen
(loss, LR, gradient norm, throughput, MFU, per-source loss), step checkpoints with a graceful interrupt, and
progress. The LightningModule trains; these measure, save and report."""

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
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy

from minimath import log
from minimath.errors import INTERRUPTED_STATUS
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


class StepBoundary:
    """Optimizer-step boundaries as seen from `on_train_batch_end`: with gradient accumulation several micro-batches
    end per step, and `trainer.global_step` moves on only after the step's last one."""

    def _start_counting(self, trainer: L.Trainer) -> None:
        self._step = trainer.global_step

    def _step_ended(self, trainer: L.Trainer) -> bool:
        """True once per optimizer step, at the end of its last micro-batch."""
        if trainer.global_step == self._step:
            return False
        self._step = trainer.global_step
        return True


class TrainingMetrics(StepBoundary, L.Callback):
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
        self._start_counting(trainer)
        self._tokens, self._time = pl_module.tokens_seen, time.perf_counter()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module, optimizer) -> None:
        """Before the module's NaN guard and the clipping: the LR this step uses and the unclipped gradient norm."""
        group = optimizer.param_groups[0]  # the base LR of the schedule (µP's hidden matrices train at lr/m)
        self._lr = group["lr"] / group.get("lr_mult", 1.0)
        self._grad_norm = global_grad_norm(pl_module.parameters(), trainer.strategy)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if len(self.source_names) and "source" in batch and outputs is not None:
            device = outputs["sequence_loss"].device
            source = batch["source"].to(device)
            self._source_loss = self._source_loss.to(device).index_add(0, source, outputs["sequence_loss"].double())
            self._source_tokens = self._source_tokens.to(device).index_add(
                0, source, outputs["sequence_tokens"].double())
        if not self._step_ended(trainer):
            return  # a micro-batch inside an optimizer step (gradient accumulation)
        step = trainer.global_step - 1
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
        if self._signal is not None and signum == signal.SIGINT:  # the second Ctrl-C: abort now, in one line
            message = f"interrupted: aborted at once (second Ctrl-C); {LAST} is the last step checkpoint saved"
            log.to_files(message)
            print(message, file=sys.stderr, flush=True)
            os._exit(INTERRUPTED_STATUS)  # Lightning would catch a KeyboardInterrupt and exit 1 without a word
        self._signal = signum
        if sys.stdout.isatty():
            sys.stdout.write("\n")  # off the in-place progress line
        log.info(f"{signal.Signals(signum).name}: finishing this optimizer step, then saving last.ckpt "
                 f"(Ctrl-C again aborts without saving)")

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._start_counting(trainer)
        self._saved_at = time.monotonic()
        if self.save_on_interrupt and threading.current_thread() is threading.main_thread():
            self._previous_handlers = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        for s, handler in self._previous_handlers.items():
            signal.signal(s, handler)
        self._previous_handlers = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._step_ended(trainer):
            return  # inside an optimizer step (gradient accumulation)
        step = trainer.global_step
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


class Progress(StepBoundary, L.Callback):
    """Progress in optimizer steps (not micro-batches): step/total, tokens seen, loss, tokens/s and ETA. On a
    terminal one line rewritten in place; into a file or pipe (nohup, a batch scheduler) a plain line every
    `every_seconds`, through the project's logger, so a stage's log shows where it is while it runs."""

    def __init__(self, every_seconds: float = 30.0, terminal_every_seconds: float = 0.5):
        self.every_seconds, self.terminal_every_seconds = every_seconds, terminal_every_seconds

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._tty = sys.stdout.isatty()
        self._start_counting(trainer)
        self._first_step = trainer.global_step
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

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if self._tty and trainer.is_global_zero and trainer.global_step < trainer.max_steps:
            sys.stdout.write("\n")


class StabilityMonitor(StepBoundary, L.Callback):
    """What a training instability shows before the loss does (YuLan-Mini's monitors), every `every_n_steps`
    optimizer steps on the tokens axis, from the step's first micro-batch:

    `stability/layer<i>/hidden_rms` (the residual stream after block i), `.../attn_norm_rms`, `.../ffn_norm_rms`
    (the norms' outputs), `.../max_attn_logit` (max |q·k|/√d over heads and positions), `.../grad_norm` and
    `.../update_ratio` (‖Δθ‖/‖θ‖ of the block's parameters over the optimizer step), and `stability/logit_rms`
    (output-layer logits over at most `logit_positions` positions).

    And on every step a loss-spike detector: a step whose loss (over all ranks) exceeds the running mean of the
    last `spike_window` steps by `spike_k` running standard deviations logs `stability/loss_spike` (its z-score)
    and `stability/spike_loss`, and a warning. `spike_action=skip` also drops that step before it is taken (its
    gradients, so weights and AdamW moments stay as they were; the module asks this detector through its
    `loss_guards` once the step's loss is known and before the optimizer runs); `report` (the default) only logs.
    Skip was chosen over rolling back: it costs one batch and no I/O, keeps every rank in step, and keeps the
    data stream a pure function of the position, so a resumed run stays bit-identical (a rollback with
    re-shuffled batches would make the data order depend on the run's history). Every loss, a spike's too,
    joins the window, so a lasting change of level (a new stage mixture) is absorbed after a few steps rather
    than skipped for ever. The window and the spikes found are saved in checkpoints (resume sees the same
    history)."""

    ACTIONS = ("report", "skip")

    def __init__(self, every_n_steps: int = 50, spike_k: float = 6.0, spike_window: int = 100,
                 logit_positions: int = 256, spike_action: str = "report"):
        if spike_action not in self.ACTIONS:
            raise ValueError(f"callbacks.stability.spike_action={spike_action!r}: choose one of {self.ACTIONS}")
        self.every_n_steps, self.spike_k, self.spike_window = every_n_steps, spike_k, spike_window
        self.logit_positions, self.spike_action = logit_positions, spike_action
        self.spikes: list[tuple[int, float]] = []  # (step, z-score)
        self._losses: list[float] = []
        self._handles: list = []
        self._capture = False
        self._stats: dict[str, float] = {}
        self._trainer = None

    def state_dict(self) -> dict:
        return {"losses": list(self._losses), "spikes": [list(s) for s in self.spikes]}

    def load_state_dict(self, state: dict) -> None:
        self._losses = [float(x) for x in state.get("losses", [])]
        self.spikes = [(int(s), float(z)) for s, z in state.get("spikes", [])]

    def _due(self, step: int) -> bool:
        return bool(self.every_n_steps) and step % self.every_n_steps == 0

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._start_counting(trainer)
        self._trainer = trainer
        pl_module.loss_guards.append(self._check_spike)
        model = pl_module.model
        for i, block in enumerate(model.layers):
            self._handles += [
                block.register_forward_hook(self._rms_hook(f"layer{i}/hidden_rms")),
                block.attention_norm.register_forward_hook(self._rms_hook(f"layer{i}/attn_norm_rms")),
                block.ffn_norm.register_forward_hook(self._rms_hook(f"layer{i}/ffn_norm_rms")),
                block.attention.register_forward_hook(self._attention_hook(f"layer{i}/max_attn_logit"))]
        self._handles.append(model.norm.register_forward_hook(self._logit_hook(model)))

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._check_spike in pl_module.loss_guards:
            pl_module.loss_guards.remove(self._check_spike)

    def _rms_hook(self, name: str):
        def hook(module, inputs, output):
            if self._capture:
                self._stats[name] = float(output.detach().float().pow(2).mean().sqrt())
        return hook

    def _attention_hook(self, name: str):
        def hook(module, inputs, output):
            if self._capture:
                x, cos, sin = inputs[:3]
                with torch.no_grad():
                    q, k = module.queries_keys(x.detach(), cos, sin)
                    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
                    self._stats[name] = float((q.float() @ k.float().transpose(-1, -2)).abs().amax()
                                              / module.head_dim ** 0.5)
        return hook

    def _logit_hook(self, model):
        def hook(module, inputs, output):
            if self._capture:
                with torch.no_grad():
                    h = model.output_hidden(output.detach().flatten(0, -2)[:self.logit_positions])
                    self._stats["logit_rms"] = float((h.float() @ model.output_weight.float().T).pow(2).mean().sqrt())
        return hook

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx) -> None:
        # the first micro-batch of a monitored step (global_step is the step about to be taken)
        self._capture = self._due(trainer.global_step) and trainer.global_step == self._step and not self._stats

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module, optimizer) -> None:
        self._capture = False
        if not self._stats:
            return
        self._before = {}
        for i, block in enumerate(pl_module.model.layers):
            params = [p for p in block.parameters() if p.grad is not None]
            if params:
                self._stats[f"layer{i}/grad_norm"] = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
            self._before[i] = [p.detach().clone() for p in block.parameters()]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._step_ended(trainer):
            return  # a micro-batch inside an optimizer step
        if not self._stats:
            return
        for i, before in getattr(self, "_before", {}).items():
            after = list(pl_module.model.layers[i].parameters())
            delta = torch.sqrt(sum((a.detach() - b).float().pow(2).sum() for a, b in zip(after, before)))
            norm = torch.sqrt(sum(b.float().pow(2).sum() for b in before))
            self._stats[f"layer{i}/update_ratio"] = float(delta / norm.clamp(min=1e-12))
        self._before = {}
        metrics = {f"stability/{k}": v for k, v in self._stats.items()}
        self._stats = {}
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=pl_module.tokens_seen)

    def _check_spike(self, step: int, loss: float) -> bool:
        """The module's loss guard: log a spike; True (skip the step) when it is one and spike_action=skip."""
        history = self._losses[-self.spike_window:]
        self._losses = (history + [loss])[-self.spike_window:]
        if len(history) < min(20, self.spike_window):
            return False
        mean = sum(history) / len(history)
        std = (sum((x - mean) ** 2 for x in history) / len(history)) ** 0.5
        z = (loss - mean) / std if std > 0 else 0.0
        if not z > self.spike_k:
            return False
        self.spikes.append((step, z))
        skip = self.spike_action == "skip"
        log.warn(f"loss spike at step {step}: {loss:.4f} is {z:.1f} standard deviations above the mean of the last "
                 f"{len(history)} steps ({mean:.4f}){'; step skipped' if skip else ''}")
        trainer = self._trainer
        if trainer is not None and trainer.is_global_zero:
            tokens = trainer.lightning_module.tokens_seen
            for logger in trainer.loggers:
                logger.log_metrics({"stability/loss_spike": z, "stability/spike_loss": loss}, step=tokens)
        return skip
