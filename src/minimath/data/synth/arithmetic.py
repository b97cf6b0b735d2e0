"""Basic arithmetic (+ − × ÷) on integers, decimals and fractions, with worked steps: the report's stage-4
`basic_math`, and the embedded default's arithmetic stream.

Each problem is computed with `Fraction`, so every line is exact. Seeded and deterministic: the same
`random.Random` state gives the same documents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from math import lcm

from minimath.data.synth.base import SPLITS, DocumentGenerator, check_subset, draw_in_split
from minimath.numbers import format_number

OPERATORS = ("+", "-", "*", "/")
KINDS = ("integer", "decimal", "fraction")
LANGUAGES = ("en", "zh")
# How each operator is printed; × and ÷ as in the report's Chinese textbooks.
SYMBOLS = {"+": "+", "-": "-", "*": "×", "/": "÷"}
HEADINGS = {"en": "Calculate:", "zh": "计算："}


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


@dataclass
class ArithmeticSource(DocumentGenerator):
    max_digits: int = 2
    operators: tuple[str, ...] = field(default_factory=lambda: OPERATORS)
    kinds: tuple[str, ...] = ("integer",)
    languages: tuple[str, ...] = ("en",)
    worked_steps: bool = False
    lines_per_doc: int = 8
    allow_negative: bool = False
    split: str = "train"  # train | heldout (a disjoint 2% of problems, for evaluation)

    def __post_init__(self):
        check_subset("split", (self.split,), SPLITS)
        self.operators = check_subset("operators", self.operators, OPERATORS)
        self.kinds = check_subset("kinds", self.kinds, KINDS)
        self.languages = check_subset("languages", self.languages, LANGUAGES)
        if self.max_digits < 1 or self.lines_per_doc < 1:
            raise ValueError("max_digits and lines_per_doc must be at least 1")

    def _integer(self, rng: random.Random) -> int:
        return rng.randint(0, 10**self.max_digits - 1)

    def _operands(self, rng: random.Random, kind: str, op: str) -> tuple[Fraction, Fraction]:
        if kind == "decimal":
            a, b = (Fraction(rng.randint(1, 10 ** (self.max_digits + 1) - 1), 10) for _ in range(2))
            b = Fraction(rng.randint(1, 10 * self.max_digits), 10) if op == "/" else b
        elif kind == "fraction":
            a, b = (Fraction(rng.randint(1, 9), rng.randint(2, 12)) for _ in range(2))
        else:
            a, b = Fraction(self._integer(rng)), Fraction(self._integer(rng))
        if op == "-" and not self.allow_negative and a < b:
            a, b = b, a
        if op == "/":
            b = b or Fraction(1)
            if kind == "integer":  # a clean quotient: divide a product by one factor
                a = a * b
            elif kind == "decimal":
                a = Fraction(round(a / b)) * b
        return a, b

    def _text(self, value: Fraction, kind: str) -> str:
        return _fraction_text(value) if kind == "fraction" else format_number(value)

    def _steps(self, a: Fraction, op: str, b: Fraction, kind: str) -> list[str]:
        """Intermediate forms between the question and the result (empty when none help)."""
        if kind == "fraction" and op in "+-" and a.denominator != b.denominator:
            d = lcm(a.denominator, b.denominator)
            return [f"{a.numerator * d // a.denominator}/{d} {SYMBOLS[op]} {b.numerator * d // b.denominator}/{d}"]
        if kind == "integer" and op == "*" and b >= 10 and b.numerator % 10:
            tens, ones = b.numerator // 10 * 10, b.numerator % 10
            return [f"{a} × {tens} + {a} × {ones}", f"{a * tens} + {a * ones}"]
        if kind == "fraction" and op == "/":
            return [f"{_fraction_text(a)} × {b.denominator}/{b.numerator}"]
        return []

    def problem(self, rng: random.Random) -> tuple[str, Fraction, list[str], str, str]:
        """(`a op b`, exact answer, worked steps, kind of numbers, operator), from this source's split."""
        return draw_in_split(lambda: self._any_problem(rng), lambda p: p[0], self.split)

    def _any_problem(self, rng: random.Random) -> tuple[str, Fraction, list[str], str, str]:
        kind, op = rng.choice(self.kinds), rng.choice(self.operators)
        a, b = self._operands(rng, kind, op)
        answer = a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else a / b
        right = self._text(b, kind)
        if op == "/" and "/" in right:  # 1 ÷ (2/7), never the ambiguous 1 ÷ 2/7
            right = f"({right})"
        question = f"{self._text(a, kind)} {SYMBOLS[op]} {right}"
        return question, answer, self._steps(a, op, b, kind) if self.worked_steps else [], kind, op

    def line(self, rng: random.Random) -> str:
        question, answer, steps, kind, _ = self.problem(rng)
        return " = ".join([question, *steps, self._text(answer, kind)])

    def answer_text(self, answer: Fraction, kind: str) -> str:
        return self._text(answer, kind)

    def heading(self, lang: str) -> str:
        """What a document puts before its first problem line: `Calculate:` / `计算：` and a newline, or nothing
        (an English-only source writes bare lines)."""
        return HEADINGS[lang] + "\n" if len(self.languages) > 1 or lang == "zh" else ""

    def document(self, rng: random.Random) -> str:
        lang = rng.choice(self.languages)
        return self.heading(lang) + "\n".join(self.line(rng) for _ in range(self.lines_per_doc))
