"""The project's one logger for status messages ("stage 3: resuming ...", "basic_math: up to date"). Hydra's job
logging sends it to the console and to the run's `<job>.log`; under DDP only rank 0 speaks. A command's product —
a results table, JSON lines, generated text, a dry run's counts — is printed to stdout instead."""

from __future__ import annotations

import logging

from lightning.pytorch.utilities import rank_zero_only

logger = logging.getLogger("minimath")


@rank_zero_only
def info(message: str) -> None:
    logger.info(message)


@rank_zero_only
def warn(message: str) -> None:
    logger.warning(message)


# Third-party messages that repeat on every run and say nothing about it: Lightning's device banner, tips and
# "fit stopped" lines (our run summary says the same: precision, device, steps), and a deprecation inside
# Lightning's own code that users cannot act on. Warnings that matter (ours, and every other) stay.
QUIET_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",)
QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")


def quiet_third_party() -> None:
    """Called at the entry points (train.py, eval.py, prepare): filter the known noise above."""
    import warnings

    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
