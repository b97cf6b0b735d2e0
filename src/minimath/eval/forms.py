"""Answer forms: what a MATH problem says the answer's form must be, and whether a written answer follows it.
The form is scored apart from the value (`runner.score_output` records `form_ok` beside `correct`): `72/375` for a
gold `24/125` is the right value in the wrong form, and reports can count either.

The instructions checked (a problem stating none of them gets `None`, no verdict):
- "common fraction": a reduced `p/q` (`\\frac{24}{125}`, `-3/4`) or an integer; not a decimal, a mixed number or
  an unreduced fraction.
- "as a decimal", "in decimal form", "to a decimal": a decimal numeral (`0.25`, `3`), no fraction.
- "rationalize the denominator": no radical (`\\sqrt`, `√`) in a denominator.
- a sign constraint on the leading coefficient of the form asked for ("in the form \\[Ax + By + Cz + D = 0,\\] where
  … $A > 0$", "$A$ is positive"): the answer does not start with a minus sign. A constraint on any other
  coefficient needs the answer solved for it, and is not checked.
"""

from __future__ import annotations

import re
from math import gcd

from minimath.eval.answers import braced
from minimath.numbers import normalize_math_text

_COMMON_FRACTION = re.compile(r"common fraction", re.IGNORECASE)
_DECIMAL = re.compile(r"\b(?:as|in|to) (?:a )?decimal\b|\bdecimal form\b", re.IGNORECASE)
_RATIONALIZE = re.compile(r"rationaliz", re.IGNORECASE)
_FORM = re.compile(r"in the form\s*(?:\$\$?([^$]+)\$|\\\[(.+?)\\\])", re.IGNORECASE | re.DOTALL)
_POSITIVE = re.compile(r"\b([A-Z])\s*>\s*0\b|\$([A-Z])\$ is positive")
_FRACTION = re.compile(r"-?\(*-?(\d+)\)*/\(*(\d+)\)*|-?\d+")
_DECIMAL_NUMERAL = re.compile(r"-?\d+(?:\.\d+)?")
_OPENING = re.compile(r"^(?:\\left|\\[dt]?frac|[\s({$])+")
_FRAC = re.compile(r"\\[dt]?frac\s*")
_SLASHED_RADICAL = re.compile(r"/\s*(?:\\sqrt|√|\([^()]*(?:\\sqrt|√))")


def _compact(answer: str) -> str:
    return re.sub(r"\s+", "", normalize_math_text(answer))


def is_common_fraction(answer: str) -> bool:
    m = _FRACTION.fullmatch(_compact(answer))
    return m is not None and (m[1] is None or (gcd(int(m[1]), int(m[2])) == 1 and int(m[2]) > 1))


def is_decimal(answer: str) -> bool:
    return _DECIMAL_NUMERAL.fullmatch(_compact(answer)) is not None


def _argument(text: str, i: int) -> tuple[str, int]:
    """A LaTeX command's argument starting at `i` (a balanced `{…}` group, or one character) and where it ends."""
    while i < len(text) and text[i].isspace():
        i += 1
    if text[i : i + 1] != "{":
        return text[i : i + 1], i + 1
    return braced(text, i) or (text[i + 1 :], len(text))


def has_rational_denominators(answer: str) -> bool:
    """No radical in a `\\frac{}{}`'s denominator, nor after a `/`."""
    for frac in _FRAC.finditer(answer):
        _, end = _argument(answer, frac.end())
        denominator, _ = _argument(answer, end)
        if "\\sqrt" in denominator or "√" in denominator:
            return False
    return _SLASHED_RADICAL.search(answer) is None


def _leading_sign_ok(question: str, answer: str) -> bool | None:
    """The answer's leading coefficient is positive when the problem asks it of its form's first letter; None when
    the problem constrains no leading coefficient."""
    form = _FORM.search(question)
    constrained = {a or b for a, b in _POSITIVE.findall(question)}
    if form is None or _OPENING.sub("", form[1] or form[2])[:1] not in constrained:
        return None
    return not _OPENING.sub("", answer).startswith("-")


def form_ok(question: str, answer: str | None) -> bool | None:
    """Whether `answer` (as written) has every form `question` asks for; None when it asks for none checked here
    (or there is no answer to judge)."""
    if answer is None:
        return None
    verdicts = [_leading_sign_ok(question, answer)]
    if _COMMON_FRACTION.search(question):
        verdicts.append(is_common_fraction(answer))
    elif _DECIMAL.search(question):
        verdicts.append(is_decimal(answer))
    if _RATIONALIZE.search(question):
        verdicts.append(has_rational_denominators(answer))
    checked = [v for v in verdicts if v is not None]
    return all(checked) if checked else None
