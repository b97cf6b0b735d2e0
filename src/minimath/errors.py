"""Errors a user can cause, and the edge where they become one-line messages."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """A mistake in config, input files or checkpoints that the user can fix; the message says how."""


def exit_on_user_error(fn: F) -> F:
    """Turn a `UserError` raised anywhere below `fn` into `error: <message>` and exit status 2.

    Entry points wrap their Hydra task function with this so that a bad value is one line, not a traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
