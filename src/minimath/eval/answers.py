"""Answers: where the final answer is in a model's output, what number it states, and whether it equals the gold.
Model output is only ever parsed (by the project's expression parser), never evaluated as code.

One grammar serves every numeric task and both protocols:
- **The final span** is the text after the last answer marker (`#### `, "The (final) answer is", `答：`/`答案是`,
  `\\boxed{…}`), else the output's last non-empty line (`auto`), or the whole output (`last_number`, the report
  protocol's "last number in the output").
- **The answer in a span** is its last run of number-and-operator characters that reads as a number or an
  arithmetic expression, after its last `=`: `答：((4)/(15))` is 4/15 (not 15), `\\frac{72}{5}` is 72/5,
  `(45+39)/(45-39)` is 14, `$1,234 dollars` is 1234. Every number format `numbers.normalize_math_text`
  knows is read (Math23k `((2)/(3))` and `5((7)/(10))`, Ape210k `4(5/11)`, `3又1/2`, LaTeX, percentages).
- **Equality is exact** (fractions): 70001 is not 70000. A decimal stands for a non-terminating value only when it
  equals that value rounded to the decimal's own places (at least two): 0.33 or 0.333 for 1/3, 26.67 for 80/3.
  `35%` is 0.35; whether a bare `35` also answers a `35%` gold is the protocol's `bare_percent` setting.
"""

from __future__ import annotations

import re
from fractions import Fraction

from minimath.data.synth.expression import ExpressionError, numeric_value
from minimath.numbers import is_terminating, normalize_math_text

_MARKERS = [
    re.compile(r"####[ \t]*([^\n]*)"),
    re.compile(r"[Tt]he (?:final )?answer is[:\s]*([^\n]*?)(?:\.\s|\.?$|\n| I hope)", re.MULTILINE),
    re.compile(r"(?:答案是|答案为|答案：|答案:|(?<![解回])答[:：])[ \t]*([^\n]*?)(?:。|$)", re.MULTILINE),
]
_RUN = re.compile(r"[0-9.+\-*/×÷^()%\s]*[0-9][0-9.+\-*/×÷^()%\s]*")
_LITERAL = re.compile(
    r"\d+\(\(\d+\)/\(\d+\)\)|\(\(\d+(?:\.\d+)?\)/\(\d+(?:\.\d+)?\)\)"
    r"|\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?%?"
)
_DECIMAL = re.compile(r"^-?\d+\.(\d+)(%?)$")
_CHOICE = re.compile(r"(?<![A-Za-z])([ABCD])(?![A-Za-z])")
METHODS = ("auto", "last_number", "boxed")


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
            return text[i + 1 : j]
    return None


def marked_span(text: str) -> str | None:
    """The text after the last answer marker (`####`, 'The answer is', '答：', `\\boxed{}`), or None."""
    found = [(m.start(), m[1]) for pattern in _MARKERS for m in pattern.finditer(text)]
    boxed = last_boxed(text)
    if boxed is not None:
        found.append((text.rfind("\\boxed"), boxed))
    return max(found, key=lambda f: f[0])[1].strip() if found else None


def _trim(run: str) -> str:
    """A run of expression characters without its sentence punctuation, dangling operators or unmatched brackets."""
    s = run.strip().rstrip(".")
    while True:
        before = s
        s = s.strip().lstrip("+*/×÷^%).").rstrip("+-*/×÷^(").strip()
        if s.count("(") > s.count(")") and s.startswith("("):
            s = s[1:]
        if s.count(")") > s.count("(") and s.endswith(")"):
            s = s[:-1]
        if s == before:
            return s


def numeric_answer(span: str) -> str | None:
    """The number a span states, as written (normalized): its last expression after its last `=` that the grammar
    reads, else the last number in that run; None when it has no number."""
    text = normalize_math_text(span)
    text = text.rsplit("=", 1)[-1] if re.search(r"=[^=]*\d", text) else text
    for run in reversed(_RUN.findall(text)):
        candidate = _trim(run)
        if not re.search(r"\d", candidate):
            continue
        try:
            numeric_value(candidate)
            return re.sub(r"\s+", "", candidate)
        except (ExpressionError, ZeroDivisionError, OverflowError):
            literals = _LITERAL.findall(candidate)
            if literals:
                return literals[-1]
    return None


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# A stated solution's assignments (`x = 3`, `y = -5`): each one starts the answer line or follows a separator, so the
# `y = 12` inside the equation `x + y = 12` is not read as one.
_ASSIGNMENT = re.compile(r"(?:^|[,，;；:：]|\bSo\b|所以|得)\s*([a-z])\s*=\s*(-?\d+(?:\.\d+)?)\s*(?=$|[,，;；.。])")
_SOLUTION_LINE = re.compile(r"^\s*(?:So\b|所以)")


def assignments(line: str) -> dict[str, Fraction] | None:
    """`{"x": 3, "y": -5}` from a line stating a solution (`So x = 3, y = -5.`, `所以 x = 3。`); None when it states
    none, or assigns one variable twice with different values."""
    found: dict[str, Fraction] = {}
    for name, value in _ASSIGNMENT.findall(line.strip()):
        if found.setdefault(name, Fraction(value)) != Fraction(value):
            return None
    return found or None


def extract_assignments(text: str) -> dict[str, Fraction] | None:
    """The solution a model stated for an equation or a system: the assignments on its first `So …`/`所以 …` line
    (where the training documents state it), else on its last line."""
    lines = [line for line in text.splitlines() if line.strip()]
    stated = next((line for line in lines if _SOLUTION_LINE.match(line)), lines[-1] if lines else "")
    return assignments(stated)


def extract_answer(text: str, method: str = "auto") -> str | None:
    """The answer a model gave. `auto`: the number after the last answer marker, else in the last line.
    `last_number`: the last number (or expression) in the whole output — the report's scripts. `boxed` (MATH): the
    last \\boxed{} or marked span as written (for math-verify), else the last number."""
    if method not in METHODS:
        raise ValueError(f"unknown extraction method {method!r}: one of {', '.join(METHODS)}")
    if method == "last_number":
        return numeric_answer(text)
    span = marked_span(text)
    if method == "boxed":
        if span is not None:
            return span.strip().strip("$").rstrip(".").strip() or None
        return numeric_answer(text)
    return numeric_answer(span if span is not None else last_line(text))


def answer_value(text: str) -> Fraction | None:
    try:
        return numeric_value(text)
    except (ExpressionError, ZeroDivisionError, OverflowError):
        return None


def _rounded(value: Fraction, decimals: int) -> Fraction:
    """`value` rounded half away from zero to `decimals` places."""
    scaled = abs(value) * 10**decimals
    whole = int(scaled) + (1 if scaled - int(scaled) >= Fraction(1, 2) else 0)
    return Fraction(whole if value >= 0 else -whole, 10**decimals)


def _stands_for(decimal_text: str, decimal_value: Fraction, exact: Fraction) -> bool:
    """A decimal written with ≥ 2 places stands for a non-terminating value it equals after rounding."""
    m = _DECIMAL.match(normalize_math_text(decimal_text).strip())
    if m is None or is_terminating(exact):
        return False
    places = len(m[1]) + (2 if m[2] else 0)
    return places >= 2 and _rounded(exact, places) == decimal_value


def is_percent(text: str) -> bool:
    return normalize_math_text(text).strip().endswith("%")


def numbers_equal(predicted: str | None, gold: str, bare_percent: bool = True) -> bool:
    """Exact numeric equality under the grammar (see the module docstring)."""
    if predicted is None:
        return False
    p, g = answer_value(predicted), answer_value(gold)
    if p is None or g is None:
        return False
    golds = [g, g * 100] if bare_percent and is_percent(gold) and not is_percent(predicted) else [g]
    return any(p == t or _stands_for(predicted, p, t) or _stands_for(gold, t, p) for t in golds)


def math_equal(predicted: str | None, gold: str) -> bool:
    """MATH answers: exact numeric equality when both are numbers, else math-verify (LaTeX and symbolic)."""
    if predicted is None:
        return False
    if answer_value(predicted) is not None and answer_value(gold) is not None:
        return numbers_equal(predicted, gold)
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${predicted}$")))
    except Exception:  # math-verify raises on LaTeX it cannot parse: that answer simply does not match
        return False


def extract_choice(text: str) -> str | None:
    """The last standalone A–D letter in the output (MiniMATH's multiple-choice scoring)."""
    matches = _CHOICE.findall(text)
    return matches[-1] if matches else None
