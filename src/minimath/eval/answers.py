"""Answer extraction and equivalence. Model output is only ever parsed, never evaluated as code."""

from __future__ import annotations

import re
from fractions import Fraction

from minimath.numbers import parse_number

_NUMBER = r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?%?"
_LAST_NUMBER = re.compile(_NUMBER)
_MARKERS = [
    re.compile(r"####\s*(.+)"),
    re.compile(r"[Tt]he (?:final )?answer is[:\s]*\$?(.+?)\$?(?:\.\s|\.?$|\n| I hope)"),
    re.compile(r"(?:答案是|答案为|答)[:：\s]*(.+?)(?:。|\n|$)"),
]
_LATEX_FRAC = re.compile(r"\\d?frac\{([^{}]+)\}\{([^{}]+)\}")
_CHOICE = re.compile(r"(?<![A-Za-z])([ABCD])(?![A-Za-z])")


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (nested braces balanced), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    return None


def last_number(text: str) -> str | None:
    matches = _LAST_NUMBER.findall(text)
    return matches[-1].replace(" ", "") if matches else None


def extract_answer(text: str, method: str = "auto") -> str | None:
    """The answer a model gave. `last_number`: MiniMATH's report scripts. `boxed`: MATH. `auto`: `#### N`,
    'The answer is …', '答：…', \\boxed{…}, then the last number."""
    if method == "last_number":
        return last_number(text)
    if method == "boxed":
        boxed = last_boxed(text)
        if boxed is not None:
            return boxed
        m = _MARKERS[1].search(text)
        return m[1].strip() if m else None
    if method != "auto":
        raise ValueError(f"unknown extraction method {method!r}")
    for pattern in _MARKERS:
        m = pattern.search(text)
        if m:
            number = last_number(m[1])
            return number if number is not None else m[1].strip()
    boxed = last_boxed(text)
    return boxed if boxed is not None else last_number(text)


def to_number(text: str) -> Fraction | None:
    """A numeric answer in any of the formats models and datasets write: 1,234 / 14.4 / 3/4 / 35% /
    ((2)/(3)) / 5((7)/(10)) / \\frac{2}{3} / $12; None when it is not a number."""
    s = text.strip().strip("$").rstrip(".").strip()
    s = _LATEX_FRAC.sub(r"(\1)/(\2)", s).replace("\\%", "%").replace("\\!", "").replace("{,}", "")
    for unit in ("元", "个", "人", "米", "千米", "厘米", "本", "天", "小时"):
        s = s.removesuffix(unit)
    try:
        return parse_number(s)
    except ValueError:
        return None


def numbers_equal(predicted: str | None, gold: str, rel_tol: float = 1e-4) -> bool:
    """Numeric equivalence with a relative tolerance. A percentage gold (35%) also accepts 35 and 0.35."""
    if predicted is None:
        return False
    p, g = to_number(predicted), to_number(gold)
    if p is None or g is None:
        return False
    targets = [g]
    if gold.strip().endswith("%") and not predicted.strip().endswith("%"):
        targets.append(g * 100)
    return any(p == t or abs(p - t) <= Fraction(rel_tol) * max(abs(p), abs(t)) for t in targets)


def math_equal(predicted: str | None, gold: str) -> bool:
    """MATH answers through math-verify (LaTeX and symbolic equivalence), with the numeric check first."""
    if predicted is None:
        return False
    if numbers_equal(predicted, gold):
        return True
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${predicted}$")))
    except Exception:  # math-verify raises on LaTeX it cannot parse: that answer simply does not match
        return False


def extract_choice(text: str) -> str | None:
    """The last standalone A–D letter in the output (MiniMATH's multiple-choice scoring)."""
    matches = _CHOICE.findall(text)
    return matches[-1] if matches else None
