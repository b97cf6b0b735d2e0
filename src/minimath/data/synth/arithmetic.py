"""Basic arithmetic lines (+ − × ÷ on integers): the embedded default's training stream.

`a op b = c`, one problem per line, several lines per document. Division is generated from a product so every
quotient is exact. Seeded and deterministic: the same `random.Random` state gives the same documents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator

OPERATORS = ("+", "-", "*", "/")
# How each operator is written in the text; × and ÷ are what the report's Chinese textbooks print.
SYMBOLS = {"+": "+", "-": "-", "*": "×", "/": "÷"}


@dataclass
class ArithmeticSource:
    max_digits: int = 2
    operators: tuple[str, ...] = field(default_factory=lambda: OPERATORS)
    lines_per_doc: int = 8
    allow_negative: bool = False

    def __post_init__(self):
        self.operators = tuple(self.operators)
        unknown = set(self.operators) - set(OPERATORS)
        if unknown or not self.operators:
            raise ValueError(f"operators must be a non-empty subset of {OPERATORS}, got {list(self.operators)}")
        if self.max_digits < 1 or self.lines_per_doc < 1:
            raise ValueError("max_digits and lines_per_doc must be at least 1")

    def _operand(self, rng: random.Random) -> int:
        return rng.randint(0, 10**self.max_digits - 1)

    def problem(self, rng: random.Random) -> tuple[str, int]:
        """One problem as (`a op b`, answer)."""
        op = rng.choice(self.operators)
        a, b = self._operand(rng), self._operand(rng)
        if op == "+":
            answer = a + b
        elif op == "-":
            if not self.allow_negative and a < b:
                a, b = b, a
            answer = a - b
        elif op == "*":
            answer = a * b
        else:
            b = max(b, 1)
            a, answer = a * b, a
        return f"{a} {SYMBOLS[op]} {b}", answer

    def document(self, rng: random.Random) -> str:
        lines = []
        for _ in range(self.lines_per_doc):
            question, answer = self.problem(rng)
            lines.append(f"{question} = {answer}")
        return "\n".join(lines)

    def documents(self, rng: random.Random) -> Iterator[str]:
        while True:
            yield self.document(rng)
