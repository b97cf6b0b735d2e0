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
            print(f"error: {err}", file=sys.stderr)
            sys.exit(USER_ERROR_STATUS)
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None)
            print(f"error: config{f' key {key}' if key else ''}: {first_line(err)}", file=sys.stderr)
            sys.exit(USER_ERROR_STATUS)
        except Interrupted as err:
            from minimath.log import to_files

            to_files(f"interrupted: {err}")  # the stage's train.log says how it ended, as the terminal does
            print(f"interrupted: {err}", file=sys.stderr)
            sys.exit(INTERRUPTED_STATUS)
        except KeyboardInterrupt:
            print("interrupted: stopped before any training step (nothing to save)", file=sys.stderr)
            sys.exit(INTERRUPTED_STATUS)

    return wrapper  # type: ignore[return-value]
