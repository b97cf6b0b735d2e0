"""Exact numbers for math text: read the answer formats of Math23k/Ape210k/GSM8K/MATH and format results for
people (used by the synthetic generators and by answer checking).

Everything is `fractions.Fraction`, so 1/3 stays 1/3 and 80% × 15% is exact. Nothing here evaluates strings
as Python.

`normalize_math_text` rewrites the ways datasets and models write one number into the single form the
parsers read: `\\frac{72}{5}`, `\\dfrac72` → `((72)/(5))`; `3\\frac{1}{2}`, `3又1/2`, `3(1/2)` (Ape210k) →
`3((1)/(2))` (a mixed number); `2分之1` → `((1)/(2))`; `1,234` and `1,\\!234` → `1234`; `\\%` → `%`;
full-width characters, `−`, `\\times`, `\\div`, `[ ]` and `{ }` to their ASCII operators and brackets; `$`, `°`,
`\\text{…}` (units), `\\left`/`\\right` and LaTeX spacing dropped; a unit's exponent (`cm^2`, `m³`) removed
with the unit.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_FRAC_SHORT = re.compile(r"\\[dt]?frac\s*(\d)\s*(\d)")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mbox|mathrm|operatorname)\s*\{[^{}]*\}")
_LATEX_DROP = re.compile(r"\\left|\\right|\\[!,;: ]|\\\$|\$|\{,\}|\^\s*\{?\s*\\circ\s*\}?|°|\\circ")
_LATEX_OPS = {r"\times": "*", r"\cdot": "*", r"\div": "/", r"\%": "%"}
_UNIT_POWER = re.compile(r"(?<=[A-Za-z\u4e00-\u9fff])\s*(?:\^\s*\{?\s*[23]\s*\}?|[²³])")
_ZH_MIXED = re.compile(r"(\d+)\s*又\s*(\d+)\s*/\s*(\d+)")
_ZH_MIXED_WORDS = re.compile(r"(\d+)\s*又\s*(\d+)\s*分之\s*(\d+)")
_ZH_FRACTION = re.compile(r"(\d+)\s*分之\s*(\d+)")
_APE_MIXED = re.compile(r"(?<![\d.)])(\d+)\((\d+)/(\d+)\)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_BARE_DECIMAL = re.compile(r"(?<![\d.])\.(?=\d)")
_BRACKETS = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")", "−": "-", "⁄": "/"})
_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3"})


def normalize_math_text(text: str) -> str:
    """`text` with every number written in one form (see the module docstring); words and units are kept."""
    s = _UNIT_POWER.sub("", text).translate(_SUPERSCRIPTS)
    s = unicodedata.normalize("NFKC", s)
    s = _LATEX_TEXT.sub(" ", s)
    for latex, op in _LATEX_OPS.items():
        s = s.replace(latex, op)
    s = _LATEX_DROP.sub("", s)
    while (replaced := _LATEX_FRAC.sub(r"((\1)/(\2))", s)) != s:  # innermost first: \frac{\frac{1}{2}}{3}
        s = replaced
    s = _LATEX_FRAC_SHORT.sub(r"((\1)/(\2))", s)
    s = _ZH_MIXED_WORDS.sub(r"\1((\3)/(\2))", s)
    s = _ZH_MIXED.sub(r"\1((\2)/(\3))", s)
    s = _ZH_FRACTION.sub(r"((\2)/(\1))", s)
    s = _APE_MIXED.sub(r"\1((\2)/(\3))", s)
    s = _THOUSANDS.sub("", s)
    s = _BARE_DECIMAL.sub("0.", s)
    return s.translate(_BRACKETS)


# Answers as Math23k/Ape210k write them: 880, -3, 14.4, 35%, 1/3, (1/3), ((2)/(3)), 5((7)/(10)), 5(7/10).
_NUMBER = r"-?\d+(?:\.\d+)?"
_FRACTION = re.compile(rf"^\(*\(?({_NUMBER})\)?\s*/\s*\(?({_NUMBER})\)?\)*$")
_MIXED = re.compile(r"^(-?\d+)\s*\(\(?(\d+)\)?\s*/\s*\(?(\d+)\)?\)$")
_PLAIN = re.compile(rf"^({_NUMBER})(%?)$")


def parse_number(text: str) -> Fraction:
    """An answer string as an exact number; ValueError for anything else (including expressions)."""
    s = normalize_math_text(text).strip().replace(" ", "")
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
    (Math23k gives 26.67 for 80/3). False when the answer is not a number."""
    try:
        expected = parse_number(answer)
    except ValueError:
        return False
    if value == expected:
        return True
    m = re.search(r"\.(\d+)%?$", answer.strip())
    if m is None:
        return False
    decimals = len(m[1]) + (2 if answer.strip().endswith("%") else 0)
    return abs(value - expected) <= Fraction(1, 2 * 10**decimals)
