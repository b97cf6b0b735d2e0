"""Learning-rate schedules: callables from optimizer step to a multiplier of the base LR.

The MiniMATH report trains at a constant 2e-4 with no schedule; other schedules (e.g. MiniCPM's
warmup-stable-decay) are added here as classes and selected with `scheduler=<name>`.
"""

from __future__ import annotations


class Constant:
    """The report's schedule: the base LR at every step."""

    def __call__(self, step: int) -> float:
        return 1.0


class Warmup:
    """A linear warmup over the first `warmup_steps` optimizer steps of a stage, then the base LR. Each stage's
    run counts steps from zero, so every stage boundary warms up again: fresh AdamW moments at the full LR
    knock a small model back towards uniform in a few steps (measured in `conf/data/embedded.yaml`)."""

    def __init__(self, warmup_steps: int):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
