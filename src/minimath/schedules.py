"""Learning-rate schedules: callables from optimizer step to a multiplier of the base LR.

The MiniMATH report trains at a constant 2e-4 with no schedule; other schedules (e.g. MiniCPM's
warmup-stable-decay) are added here as classes and selected with `scheduler=<name>`.
"""

from __future__ import annotations


class Constant:
    """The report's schedule: the base LR at every step."""

    def __call__(self, step: int) -> float:
        return 1.0
