"""Learning-rate schedules: callables from optimizer step (within a stage) to a multiplier of the base LR. The
training run passes `total_steps` (the stage's optimizer steps) to every schedule.

The MiniMATH report trains at a constant 2e-4 with no schedule; other schedules (e.g. MiniCPM's
warmup-stable-decay) are added here as classes and selected with `scheduler=<name>`.
"""

from __future__ import annotations


class Constant:
    """The report's schedule: the base LR at every step."""

    def __init__(self, total_steps: int = 0):
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        return 1.0


class Warmup:
    """Per stage: a linear warmup over the first `warmup_steps` optimizer steps, the base LR, and optionally a
    linear decay to `final_ratio` of it over the last `decay_fraction` of the stage's `total_steps` (set by the
    training run). Each stage's run counts steps from zero, so every stage boundary warms up again: fresh AdamW
    moments at the full LR knock a small model back towards uniform in a few steps (see `conf/data/embedded.yaml`).
    """

    def __init__(self, warmup_steps: int, decay_fraction: float = 0.0, final_ratio: float = 1.0, total_steps: int = 0):
        if warmup_steps < 0 or not 0.0 <= decay_fraction <= 1.0 or not 0.0 <= final_ratio <= 1.0:
            raise ValueError(f"warmup_steps >= 0, decay_fraction and final_ratio in [0, 1]; got {warmup_steps}, "
                             f"{decay_fraction}, {final_ratio}")
        self.warmup_steps, self.decay_fraction, self.final_ratio = warmup_steps, decay_fraction, final_ratio
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        decay_steps = round(self.decay_fraction * self.total_steps)
        into_decay = step - (self.total_steps - decay_steps)
        if decay_steps <= 0 or into_decay < 0:
            return warm
        return min(warm, 1.0 - (1.0 - self.final_ratio) * min(1.0, (into_decay + 1) / decay_steps))
