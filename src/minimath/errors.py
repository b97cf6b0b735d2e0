"""Errors a user can cause, and the edge where they become one-line messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf.errors import OmegaConfBaseException

F = TypeVar("F", bound=Callable)

USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130  # 128 + SIGINT, what shells report for a Ctrl-C


class UserError(Exception):
    """A mistake in config, input files or checkpoints that the user can fix; the message says how."""


class Interrupted(Exception):
    """The run stopped on SIGINT/SIGTERM after saving its work; the message says where and how to continue."""


class JobFailed(Exception):
    """One job of a Hydra multirun ended with a user error (its `error:` line already printed). Raised rather than
    exited, so that Hydra records the job as failed and the launcher runs the sweep's other jobs; the sweep then
    reports it and exits with `status`."""

    def __init__(self, message: str, status: int = USER_ERROR_STATUS):
        super().__init__(message, status)  # both in args: the exception crosses process boundaries (joblib)
        self.message, self.status = message, status

    def __str__(self) -> str:
        return self.message


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (`-m`)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except ImportError:
        return False


def stop(status: int, message: str) -> None:
    """End with `status` (its reason already said): exit, or in a sweep's job raise `JobFailed`, so that the other
    jobs still run."""
    if in_multirun():
        raise JobFailed(message, status) from None
    sys.exit(status)


def _fail(message: str) -> None:
    """`error: <message>` on stderr, then status 2."""
    print(f"error: {message}", file=sys.stderr)
    stop(USER_ERROR_STATUS, message)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def exit_on_user_error(fn: F) -> F:
    """Turn what a user causes, raised anywhere below `fn`, into one line on stderr: a `UserError` or a config
    error (a missing key, a bad interpolation) → `error: <message>`, status 2; an interrupt → `interrupted: ...`,
    status 130. Entry points wrap their Hydra task function with this, so a bad value is one line, not a
    traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            _fail(str(err))
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None)
            _fail(f"config{f' key {key}' if key else ''}: {first_line(err)}")
        except Interrupted as err:
            from minimath.log import to_files

            to_files(f"interrupted: {err}")  # the stage's train.log says how it ended, as the terminal does
            print(f"interrupted: {err}", file=sys.stderr)
            sys.exit(INTERRUPTED_STATUS)
        except KeyboardInterrupt:
            print("interrupted: stopped before any training step (nothing to save)", file=sys.stderr)
            sys.exit(INTERRUPTED_STATUS)

    return wrapper  # type: ignore[return-value]
