"""The project's one logger for status messages ("stage 3: resuming ...", "basic_math: up to date"). Hydra's job
logging sends it to the console and to the run's `<job>.log`; under DDP only rank 0 speaks. A command's product —
a results table, JSON lines, generated text, a dry run's counts — is printed to stdout instead."""

from __future__ import annotations

import logging
import os

from lightning_utilities.core.rank_zero import rank_zero_only  # Lightning's own, without importing Lightning

logger = logging.getLogger("minimath")
if getattr(rank_zero_only, "rank", None) is None:  # what Lightning sets on import (from the same variables)
    rank_zero_only.rank = next(
        (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK") if k in os.environ), 0
    )


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


def to_loggers(loggers, metrics: dict[str, float], step: int) -> None:
    """Metrics to every logger of a run (`trainer.loggers`), at `step`: tokens seen, the axis every curve shares."""
    for sink in loggers:
        sink.log_metrics(metrics, step=step)


def to_files(message: str) -> None:
    """Write a line into the run's log files only (`train.log`): for a line the entry point prints to stderr."""
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _not_quieted(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not record.name.startswith(QUIET_LOGGERS)


def quiet_third_party() -> None:
    """Called at the entry points (train.py, eval.py, prepare): filter the known noise above. The loggers' levels
    and, since Lightning sets its level to INFO again when it is imported (after this, where it is imported lazily),
    a filter on the handlers the records reach."""
    import warnings

    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if _not_quieted not in handler.filters:
            handler.addFilter(_not_quieted)
