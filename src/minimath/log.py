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
