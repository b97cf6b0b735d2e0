"""Equation → chain-of-thought: a step-by-step solution for a Math23k/Ape210k record, in the record's language.

The record's `equation` (e.g. `x=120*80%*15%`) is parsed safely and solved one operation at a time; the
solution is only written when the result equals the record's `ans` (else `CotError` says why, and the
caller counts the skip).
"""

from __future__ import annotations

import re

from minimath.data.synth.expression import ExpressionError, numeric_value, parse_equation, render, worked_steps
from minimath.numbers import agrees_with_answer, format_number

_CJK = re.compile(r"[\u4e00-\u9fff]")


class CotError(ValueError):
    pass


def language_of(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def display_answer(ans: str) -> str:
    """The gold answer as a person writes it: 35% stays a percentage, ((2)/(3)) becomes 2/3, and an Ape210k
    expression answer (`(45+39)/(45-39)`) its value."""
    text = ans.strip()
    return text if text.endswith("%") else format_number(numeric_value(text))


def build_cot(question: str, equation: str, ans: str, language: str | None = None) -> str:
    try:
        expr = parse_equation(equation)
        steps, value = worked_steps(expr)
        expected = numeric_value(ans)
    except (ExpressionError, ValueError, ZeroDivisionError) as err:
        raise CotError(str(err)) from None
    if value != expected and not agrees_with_answer(value, ans):
        raise CotError(f"equation {equation!r} gives {format_number(value)}, but ans is {ans!r}")
    lang = language or language_of(question)
    answer = display_answer(ans)
    lines = []
    for i, step in enumerate(steps, start=1):
        result = format_number(step.result)
        if i == len(steps) and step.result != expected:
            result += f" ≈ {answer}"
        lines.append((f"第{i}步：" if lang == "zh" else f"Step {i}: ") + f"{step.expression} = {result}")
    if lang == "zh":
        head = [f"题目：{question.strip()}", f"解答：列式 x = {render(expr)}"]
        tail = f"答：{answer}"
    else:
        head = [f"Question: {question.strip()}", f"Solution: Let x = {render(expr)}."]
        tail = f"The answer is {answer}."
    return "\n".join(head + lines + [tail])


def record_to_cot(record: dict) -> str:
    """A Math23k/Ape210k record (`original_text`, `equation`, `ans`) as question + worked solution."""
    missing = [k for k in ("original_text", "equation", "ans") if not str(record.get(k, "")).strip()]
    if missing:
        raise CotError(f"record lacks {', '.join(missing)}")
    return build_cot(str(record["original_text"]), str(record["equation"]), str(record["ans"]))
