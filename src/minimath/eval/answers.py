"""Answers: where the final answer is in a model's output, what it states, and whether it equals the gold.
Model output is only ever parsed (by the project's expression parser), never evaluated as code.

One grammar serves every numeric task and both protocols (`extract_answer`):
- **The answer is the stated one**: the first number or arithmetic expression after the last answer marker (`####`,
  "The (final) answer is", with a qualifier in parentheses too — "the answer (arabic numerals) is 6" —, a line
  starting "Answer:", `答：`/`答案是`, `\\boxed{…}`). An expression followed by `=` is working and its result
  is read (`答：480÷(3+5)=60（千米）` is 60). What follows the stated answer does not count: "The answer is 6." and
  then a line ending in 8 states 6, under either protocol.
- **Without a marker**, the last number of the output's last non-empty line (`auto`) or of the whole output
  (`last_number`, the report protocol's "last number in the output"), after its last `=`: `(45+39)/(45-39)` is 14,
  `$1,234 dollars` is 1234.
- A number that is an operand of an unknown is no answer: nothing is read from `x = 4/3*(3/4*x)` or `3/4x`.
- `\\text{…}` (`\\mathrm`, `\\mbox`) is a unit, dropped with its exponent (`48 \\text{cm}^2` is 48, not 48²),
  unless it holds a digit or is the whole answer (`\\boxed{\\text{6 apples}}` states 6).
- Every number format `numbers.normalize_math_text` knows is read (Math23k `((2)/(3))` and `5((7)/(10))`,
  Ape210k `4(5/11)`, `3又1/2`, LaTeX, percentages).

Equality (`numbers_equal`; `math_equal` for MATH):
- **Exact** (fractions): 70001 is not 70000. A decimal stands for a non-terminating value when it shows at least
  two places and two significant digits and equals the value rounded to its places (0.33 or 0.333 for 1/3, 26.67
  for 80/3, 0.0634 for 32/505 — but not 0.06, nor 0.0635), or when it has 15 or more significant digits and is the
  same binary double (`0.063366336633663367`, a float printed to 17 digits).
- **Percent**: `35%` is 0.35; whether a bare `35` also answers a `35%` gold is the protocol's `bare_percent`. When
  the question asks for a percent ("what percent", "as a percent"), a bare gold counts in percent: `20%` and `20`
  answer a gold 20, 0.2 does not. Otherwise `20%` never equals 20.
- **Letters** (`LQSX`, `A, C`) are compared as letters, never through math-verify (which reads them as a product of
  variables: `DCBA` = `ABCD`). Order matters, unless the problem asks for several items ("list all", "enter all",
  "separated by commas", "which of the following") and says nothing of an order ("order", "arrange", "sequence").
- **Words** (a word gold of TabMWP or ASDiv: "yes", an option, a name) are compared as words, case and quotes
  aside: `stated_text`, `texts_equal`.
- **MATH** answers that are a number, with or without a unit (`48 \\text{ square units}`, "6 apples" in text),
  are compared as numbers; anything else through math-verify (LaTeX and symbolic: `2xy` is not 2).
"""

from __future__ import annotations

import re
from fractions import Fraction

from minimath.data.synth.expression import ExpressionError, numeric_value
from minimath.numbers import is_terminating, normalize_math_text

_QUALIFIER = r"(?:\s*\([^()\n]*\))?"  # "the answer (arabic numerals) is 6"
_MARKERS = [
    re.compile(r"####[ \t]*([^\n]*)"),
    re.compile(rf"[Tt]he (?:final )?answer{_QUALIFIER}(?: is|:)[:\s]*([^\n]*?)(?:\.\s|\.?$|\n| I hope)", re.MULTILINE),
    re.compile(rf"^[ \t*]*(?:Final )?Answer{_QUALIFIER}[ \t*]*:[ \t*]*([^\n]*?)(?:\.\s|\.?$)", re.MULTILINE),
    re.compile(r"(?:答案是|答案为|答案：|答案:|(?<![解回])答[:：])[ \t]*([^\n]*?)(?:。|$)", re.MULTILINE),
]
_RUN = re.compile(r"[0-9.+\-*/×÷^()%\s]*[0-9][0-9.+\-*/×÷^()%\s]*")
_LITERAL = re.compile(
    r"\d+\(\(\d+\)/\(\d+\)\)|\(\(\d+(?:\.\d+)?\)/\(\d+(?:\.\d+)?\)\)"
    r"|\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?%?"
)
_DECIMAL = re.compile(r"^-?(\d+)\.(\d+)(%?)$")
_CHOICE = re.compile(r"(?<![A-Za-z])([ABCD])(?![A-Za-z])")
# `\text{cm}^2`: a LaTeX text box with the exponent a unit may carry.
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}((?:\s*\^\s*\{?\s*[23]\s*\}?|[²³])?)")
_MATH_DELIMITERS = re.compile(r"\\[()\[\]]")
_MATH_MODE = re.compile(r"\$\$?(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
# What a sentence says after its answer: "The answer is 6, because 2 + 4 = 6."
_AFTERWORD = re.compile(r"[,;]?\s+(?:and|but|because|since|so|which|not|while|then|as)\b.*", re.DOTALL)
# Words after a number in text (never in math mode, where `2 xy` is a product): "6 apples", "48 square units".
_UNIT_WORDS = re.compile(r"(?<=[\d)%])\s+[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})*\s*$")
_LETTER_ANSWER = re.compile(r"(?:\(?[A-Z]\)?[\s,]*)+")
_ASKS_SET = re.compile(r"\b(?:list|enter|name|find) all\b|separated by commas|which of the following", re.IGNORECASE)
_ASKS_ORDER = re.compile(r"\border\b|\barrang|\bsequence\b", re.IGNORECASE)
_ASKS_PERCENT = re.compile(
    r"\bwhat (?:is the )?percent(?:age)?\b|\b(?:as|in) (?:a )?percent(?:age)?\b|\bhow many percent\b",
    re.IGNORECASE,
)
METHODS = ("auto", "last_number", "boxed")


def braced(text: str, i: int) -> tuple[str, int] | None:
    """The content of the `{…}` group opening at `text[i]` (nested braces balanced) and the index after it; None
    when it is not closed."""
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j], j + 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (nested braces balanced), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    group = None if i < 0 else braced(text, i)
    return None if group is None else group[0]


def _last_marked(text: str) -> tuple[str, bool] | None:
    """The text after the last answer marker, and whether it is a \\boxed{} content; None without a marker."""
    found = [(m.start(), m[1], False) for pattern in _MARKERS for m in pattern.finditer(text)]
    boxed = last_boxed(text)
    if boxed is not None:
        found.append((text.rfind("\\boxed"), boxed, True))
    if not found:
        return None
    _, span, is_boxed = max(found, key=lambda f: f[0])
    return span.strip(), is_boxed


def marked_span(text: str) -> str | None:
    """The text after the last answer marker (`####`, 'The answer is', 'Answer:', '答：', `\\boxed{}`), or None."""
    marked = _last_marked(text)
    return None if marked is None else marked[0]


def _unwrap_text(text: str) -> str:
    """`\\text{…}` read as an answer means it: one holding a digit is the number in words (`6 apples` is 6), the
    whole answer is kept as plain text (`\\text{(C)}`); any other is a unit, dropped with its exponent."""
    whole = _TEXT.fullmatch(text.strip())
    if whole and not whole[2]:
        return _UNIT_WORDS.sub("", whole[1])
    return _TEXT.sub(lambda m: f" {_UNIT_WORDS.sub('', m[1])} " if re.search(r"\d", m[1]) else " ", text)


def _plain(text: str) -> str:
    """`text` as the number grammar reads it: units unwrapped, math delimiters and `·` read, numbers normalized."""
    text = _MATH_DELIMITERS.sub(" ", _unwrap_text(text)).replace("·", "*").replace("⋅", "*")
    return normalize_math_text(text)


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


def _of_unknown(text: str, run: re.Match) -> bool:
    """Whether a run is an operand of a letter: `3/4*x`, `x + 3`, `4x` (a coefficient), not `5 cm` or `-3`."""
    core, before, after = run[0].strip(), text[: run.start()][-1:], text[run.end() :]
    return bool(
        (re.match(r"[A-Za-z]", after) and core[-1] in "+-*/×÷^")
        or (re.fullmatch(r"[A-Za-z]", before) and core[0] in "+*/×÷^")
        or (not run[0][-1].isspace() and re.match(r"[A-Za-z](?![A-Za-z])", after))
    )


def _expressions(text: str) -> list[tuple[str, bool]]:
    """The expressions a normalized text writes, in order, each with whether `=` follows it (working, not a
    result); operands of unknowns are left out."""
    found = []
    for run in _RUN.finditer(text):
        candidate = _trim(run[0])
        if re.search(r"\d", candidate) and not _of_unknown(text, run):
            found.append((candidate, text[run.end() :].startswith("=")))
    return found


def _read(candidate: str, first: bool) -> str | None:
    """An expression as the grammar reads it; one it cannot parse gives its first or last number literal."""
    try:
        numeric_value(candidate)
        return re.sub(r"\s+", "", candidate)
    except (ExpressionError, ZeroDivisionError, OverflowError):
        literals = _LITERAL.findall(candidate)
        return (literals[0] if first else literals[-1]) if literals else None


def numeric_answer(span: str) -> str | None:
    """The number a span ends on, as written (normalized): its last expression after its last `=` that the grammar
    reads, else the last number in that run; None when it has no number."""
    text = _plain(span)
    text = text.rsplit("=", 1)[-1] if re.search(r"=[^=]*\d", text) else text
    for candidate, _ in reversed(_expressions(text)):
        if (read := _read(candidate, first=False)) is not None:
            return read
    return None


def stated_number(span: str) -> str | None:
    """The number a marked span states, as written (normalized): its first expression that is not working."""
    for candidate, working in _expressions(_plain(span)):
        if not working and (read := _read(candidate, first=True)) is not None:
            return read
    return None


def written_answer(span: str, boxed: bool) -> str | None:
    """The stated answer of a marked span as written, for math-verify and the form checks: a \\boxed{} content
    whole; after a text marker, its first math-mode segment, else the span up to what the sentence adds."""
    if not boxed:
        m = _MATH_MODE.search(span)
        span = next(g for g in m.groups() if g) if m else _UNIT_WORDS.sub("", _AFTERWORD.sub("", span).rstrip("."))
    return span.strip().strip("$").rstrip(".").strip() or None


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
    """The answer a model stated (see the module docstring): the first number after the last answer marker, under
    every method. Without a marker, `auto`: the last number of the last line; `last_number`: of the whole output
    (the report's scripts). `boxed` (MATH): the stated answer as written (for math-verify), else the last number."""
    if method not in METHODS:
        raise ValueError(f"unknown extraction method {method!r}: one of {', '.join(METHODS)}")
    marked = _last_marked(text)
    if method == "boxed":
        return numeric_answer(text) if marked is None else written_answer(*marked)
    if marked is not None:
        return stated_number(marked[0])
    return numeric_answer(text if method == "last_number" else last_line(text))


def answer_value(text: str) -> Fraction | None:
    try:
        return numeric_value(_unwrap_text(text))
    except (ExpressionError, ZeroDivisionError, OverflowError):
        return None


def _rounded(value: Fraction, decimals: int) -> Fraction:
    """`value` rounded half away from zero to `decimals` places."""
    scaled = abs(value) * 10**decimals
    whole = int(scaled) + (1 if scaled - int(scaled) >= Fraction(1, 2) else 0)
    return Fraction(whole if value >= 0 else -whole, 10**decimals)


def _stands_for(decimal_text: str, decimal_value: Fraction, exact: Fraction) -> bool:
    """A decimal stands for a non-terminating value it equals at its shown precision (≥ 2 places and ≥ 2
    significant digits), or as a binary double when it shows ≥ 15 significant digits (a printed float)."""
    m = _DECIMAL.match(normalize_math_text(decimal_text).strip())
    if m is None or is_terminating(exact):
        return False
    places = len(m[2]) + (2 if m[3] else 0)
    digits = len((m[1] + m[2]).lstrip("0"))
    if places < 2 or digits < 2:
        return False
    return _rounded(exact, places) == decimal_value or (digits >= 15 and float(decimal_value) == float(exact))


def is_percent(text: str) -> bool:
    return normalize_math_text(text).strip().endswith("%")


def asks_percent(question: str) -> bool:
    """Whether a question asks for its answer in percent ("What percent of …", "Express it as a percent")."""
    return bool(_ASKS_PERCENT.search(question))


def numbers_equal(predicted: str | None, gold: str, bare_percent: bool = True, percent_question: bool = False) -> bool:
    """Exact numeric equality under the grammar (see the module docstring). `percent_question`: the question asks
    for a percent, so a predicted `20%` answers a bare gold 20."""
    if predicted is None:
        return False
    if percent_question and is_percent(predicted) and not is_percent(gold):
        predicted = normalize_math_text(predicted).strip()[:-1]
    p, g = answer_value(predicted), answer_value(gold)
    if p is None or g is None:
        return False
    golds = [g, g * 100] if bare_percent and is_percent(gold) and not is_percent(predicted) else [g]
    return any(p == t or _stands_for(predicted, p, t) or _stands_for(gold, t, p) for t in golds)


def letters(text: str) -> list[str] | None:
    """The letters an answer made of letters states (`LQSX`, `\\text{(C)}`, `A, C`), or None."""
    s = _TEXT.sub(r"\1", text).strip().strip("$").rstrip(".").strip()
    return re.findall(r"[A-Z]", s) if _LETTER_ANSWER.fullmatch(s) else None


def asks_set(question: str) -> bool:
    """Whether a problem asks for several items in no order ("Enter all the letters, separated by commas")."""
    return bool(_ASKS_SET.search(question)) and not _ASKS_ORDER.search(question)


def _number_text(text: str) -> str | None:
    """A MATH answer that is a number (its unit dropped: `48 \\text{ square units}`), normalized; else None."""
    s = _plain(text).strip().rstrip(".")
    return s if answer_value(s) is not None else None


def math_equal(predicted: str | None, gold: str, question: str = "") -> bool:
    """MATH answers (the problem's `question` says how letters and percents compare): letters as letters, numbers
    exactly, anything else through math-verify (LaTeX and symbolic)."""
    if predicted is None:
        return False
    gold_letters = letters(gold)
    if gold_letters is not None:
        stated = letters(predicted)
        if stated is None or not asks_set(question):
            return stated == gold_letters
        return sorted(stated) == sorted(gold_letters)
    p, g = _number_text(predicted), _number_text(gold)
    if p is not None and g is not None:
        return numbers_equal(p, g, percent_question=asks_percent(question))
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${predicted}$")))
    except Exception:  # math-verify raises on LaTeX it cannot parse: that answer simply does not match
        return False


def stated_text(text: str) -> str | None:
    """A word answer as stated (TabMWP's "yes" or one of its options, a name): after the last answer marker as
    `written_answer` reads it, else the output's last line."""
    marked = _last_marked(text)
    return written_answer(*marked) if marked is not None else (last_line(text).strip().rstrip(".") or None)


def _words(text: str) -> str:
    s = re.sub(r"[$\"'`*]", "", _TEXT.sub(r"\1", text)).strip().rstrip(".")
    return " ".join(s.split()).casefold()


def texts_equal(predicted: str | None, gold: str) -> bool:
    """Word answers compared as words: case, quotes, `\\text{}`, dollar signs and the closing period aside."""
    return predicted is not None and _words(predicted) == _words(gold)


def extract_choice(text: str) -> str | None:
    """The last standalone A–D letter in the output (MiniMATH's multiple-choice scoring)."""
    matches = _CHOICE.findall(text)
    return matches[-1] if matches else None
