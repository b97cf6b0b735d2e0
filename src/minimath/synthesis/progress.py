"""The synthesis progress line: done/total, requests/s, tokens, failures by reason and ETA — rewritten in place on a
terminal, a plain line every `every_seconds` into a file or pipe (nohup, a batch scheduler)."""

from __future__ import annotations

import sys
import time
from collections import Counter


def duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class SynthesisProgress:
    def __init__(self, total: int, cached: int, every_seconds: float = 30.0, stream=None):
        self.total, self.cached = total, cached
        self.done, self.tokens_in, self.tokens_out = cached, 0, 0
        self.failures: Counter = Counter()
        self.every_seconds = every_seconds
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()
        self._start = self._shown = time.monotonic()

    def add(self, ok: bool, tokens_in: int = 0, tokens_out: int = 0, failure: str | None = None) -> None:
        if ok:
            self.done += 1
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
        else:
            self.failures[failure] += 1
        self.show()

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        answered = self.done - self.cached
        rate = answered / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done - sum(self.failures.values())
        failures = ", ".join(f"{reason} ×{n}" for reason, n in sorted(self.failures.items())) or "none"
        return (
            f"synthesis {self.done:,}/{self.total:,} ({100 * self.done / max(self.total, 1):.0f}%, "
            f"{self.cached:,} cached) | {rate:.2f} requests/s | tokens in {self.tokens_in:,} out "
            f"{self.tokens_out:,} | failures: {failures} | ETA {duration(left / rate if rate else float('nan'))}"
        )

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if self._tty and (final or now - self._shown >= 0.5):
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
        elif not self._tty and (final or now - self._shown >= self.every_seconds):
            self.stream.write(self.line() + "\n")
        else:
            return
        self.stream.flush()
        self._shown = now

    def end_line(self) -> None:
        """Before a message that interrupts an in-place line (Ctrl-C, an error): finish the line first."""
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
