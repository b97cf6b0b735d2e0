"""Exact numbers for math text: parse the answer formats of Math23k/Ape210k/GSM8K and format results for people
(used by the synthetic generators and by answer checking).

Everything is `fractions.Fraction`, so 1/3 stays 1/3 and 80% × 15% is exact. Nothing here evaluates strings
as Python.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Answers as Math23k/Ape210k write them: 880, -3, 14.4, 35%, 1/3, (1/3), ((2)/(3)), 5((7)/(10)), 5(7/10).
_NUMBER = r"-?\d+(?:\.\d+)?"
_FRACTION = re.compile(rf"^\(*\(?({_NUMBER})\)?\s*/\s*\(?({_NUMBER})\)?\)*$")
_MIXED = re.compile(r"^(-?\d+)\s*\(\(?(\d+)\)?\s*/\s*\(?(\d+)\)?\)$")
_PLAIN = re.compile(rf"^({_NUMBER})(%?)$")


def parse_number(text: str) -> Fraction:
    """An answer string as an exact number; ValueError for anything else (including expressions)."""
    s = text.strip().replace(" ", "").replace(",", "")
    if m := _PLAIN.match(s):
        value = Fraction(m[1])
        return value / 100 if m[2] else value
    if m := _MIXED.match(s):
        whole, num, den = int(m[1]), int(m[2]), int(m[3])
        if den == 0:
            raise ValueError(f"zero denominator in {text!r}")
        frac = Fraction(num, den)
        return whole - frac if whole < 0 or m[1].startswith("-") else whole + frac
    if m := _FRACTION.match(s):
        den = Fraction(m[2])
        if den == 0:
            raise ValueError(f"zero denominator in {text!r}")
        return Fraction(m[1]) / den
    raise ValueError(f"not a number: {text!r}")


def is_terminating(value: Fraction) -> bool:
    """True when the decimal expansion ends (the reduced denominator has no prime factor but 2 and 5)."""
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def format_number(value: Fraction, max_decimals: int = 6) -> str:
    """880, 14.4, -0.25, or 1/3 when the decimal does not end within `max_decimals` places."""
    if value.denominator == 1:
        return str(value.numerator)
    if is_terminating(value):
        text = f"{float(value):.{max_decimals}f}".rstrip("0").rstrip(".")
        if Fraction(text) == value:
            return text
    return f"{value.numerator}/{value.denominator}"


def agrees_with_answer(value: Fraction, answer: str) -> bool:
    """`value` equals the answer string, allowing for the answer being rounded to its written decimals
    (Math23k gives 26.67 for 80/3)."""
    expected = parse_number(answer)
    if value == expected:
        return True
    m = re.search(r"\.(\d+)%?$", answer.strip())
    if m is None:
        return False
    decimals = len(m[1]) + (2 if answer.strip().endswith("%") else 0)
    return abs(value - expected) <= Fraction(1, 2 * 10**decimals)
