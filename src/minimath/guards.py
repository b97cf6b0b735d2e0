"""The loss-spike guard the LightningModule asks once per optimizer step, after the step's loss is known over all
ranks and before the optimizer runs (`train.loss_guard`; `callbacks=monitored` turns it on).

A step whose loss exceeds the running mean of the last `window` steps by `k` running standard deviations is a
spike: it is reported (a warning; `StabilityMonitor` logs `stability/loss_spike` and `stability/spike_loss`) and,
with `action=skip`, dropped before it is taken (its gradients, so weights and AdamW moments stay as they were).
Skip was chosen over rolling back: it costs one batch and no I/O, keeps every rank in step, and keeps the data
stream a pure function of the position, so a resumed run stays bit-identical (a rollback with re-shuffled batches
would make the data order depend on the run's history). Every loss, a spike's too, joins the window, so a lasting
change of level (a new stage mixture) is absorbed after a few steps rather than skipped for ever. The window and
the spikes found are saved in checkpoints (resume sees the same history)."""

from __future__ import annotations

from dataclasses import dataclass

from minimath import log


@dataclass(frozen=True)
class Spike:
    step: int  # the optimizer step
    loss: float  # its loss over all ranks
    z: float  # standard deviations above the window's mean
    skip: bool  # the step is dropped (action=skip)


class LossSpikeGuard:
    ACTIONS = ("report", "skip")
    MIN_HISTORY = 20  # steps of history (or the whole window, if shorter) before any step can be a spike

    def __init__(self, k: float = 6.0, window: int = 100, action: str = "report"):
        if action not in self.ACTIONS:
            raise ValueError(f"train.loss_guard.action={action!r}: choose one of {self.ACTIONS}")
        self.k, self.window, self.action = k, window, action
        self.spikes: list[tuple[int, float]] = []  # (step, z-score)
        self._losses: list[float] = []

    def state_dict(self) -> dict:
        return {"losses": list(self._losses), "spikes": [list(s) for s in self.spikes]}

    def load_state_dict(self, state: dict) -> None:
        self._losses = [float(x) for x in state.get("losses", [])]
        self.spikes = [(int(s), float(z)) for s, z in state.get("spikes", [])]

    def check(self, step: int, loss: float) -> Spike | None:
        """The spike this step's loss is, if it is one (with a warning); every loss joins the window."""
        history = self._losses[-self.window :]
        self._losses = (history + [loss])[-self.window :]
        if len(history) < min(self.MIN_HISTORY, self.window):
            return None
        mean = sum(history) / len(history)
        std = (sum((x - mean) ** 2 for x in history) / len(history)) ** 0.5
        z = (loss - mean) / std if std > 0 else 0.0
        if not z > self.k:
            return None
        self.spikes.append((step, z))
        skip = self.action == "skip"
        log.warn(
            f"loss spike at step {step}: {loss:.4f} is {z:.1f} standard deviations above the mean of the last "
            f"{len(history)} steps ({mean:.4f}){'; step skipped' if skip else ''}"
        )
        return Spike(step, loss, z, skip)
