"""Record → training text, one function per public schema. A record that cannot be used raises `SkipRecord`
with a short reason; the caller counts it per source and reports the first offender.

Schemas (as published):
- plain text corpora (tiny-strange-textbooks, MathPile, Wikipedia: `text`; WanJuan-1.0 news: `content`)
- WanJuan-1.0 Exam-cn: `q_main`, `option_a`..`option_e`, `std_ans`, `answer`, `answer_detail` (+ `q_type`, `grade`,
  `major`, `keypoint`)
- GSM8K: `question`, `answer` with `<<calc>>` annotations and a final `#### N`
- Math23k / Ape210k: `original_text`, `equation` (`x=...`), `ans` → question + chain-of-thought
- MATH: `problem`, `solution` (final answer in `\\boxed{}`)
- MathInstruct: `instruction`, `output`
- BELLE: `instruction`, `input`, `output`
- MNBVC Q&A: `问`, `答`
- tiny-codes: `prompt`, `response`
"""

from __future__ import annotations

import re
from collections.abc import Callable

from minimath.data.synth.cot import CotError, record_to_cot


class SkipRecord(ValueError):
    """This record yields no document; the message is the reason, counted per source."""


def _field(record: dict, name: str) -> str:
    value = record.get(name)
    if value is None:
        raise SkipRecord(f"missing field {name!r}")
    if not isinstance(value, str):
        raise SkipRecord(f"field {name!r} is {type(value).__name__}, not text")
    return value


def text(record: dict, field: str = "text") -> str:
    return _field(record, field)


_CALC = re.compile(r"<<[^>]*>>")
_GSM8K_FINAL = re.compile(r"\n?####\s*(.+?)\s*$")


def gsm8k(record: dict) -> str:
    """Question, then the worked answer without calculator annotations, ending `The answer is N.`"""
    question, answer = _field(record, "question"), _field(record, "answer")
    m = _GSM8K_FINAL.search(answer)
    if m is None:
        raise SkipRecord("answer has no '#### N' line")
    steps = _CALC.sub("", answer[: m.start()]).strip()
    return f"Question: {question.strip()}\nAnswer: {steps}\nThe answer is {m[1]}."


def math23k(record: dict) -> str:
    """Question with a chain-of-thought built from the record's equation (also for Ape210k)."""
    try:
        return record_to_cot(record)
    except CotError as err:
        raise SkipRecord(str(err)) from None


def math_competition(record: dict) -> str:
    problem, solution = _field(record, "problem"), _field(record, "solution")
    if "\\boxed" not in solution:
        raise SkipRecord("solution has no \\boxed{} answer")
    return f"Problem: {problem.strip()}\nSolution: {solution.strip()}"


def instruction(record: dict, prompt: str = "instruction", extra: str | None = None, response: str = "output") -> str:
    """Instruction data (MathInstruct, BELLE): prompt (+ optional input) and response."""
    parts = [_field(record, prompt).strip()]
    if extra and str(record.get(extra) or "").strip():
        parts.append(str(record[extra]).strip())
    return "\n".join(parts) + "\n" + _field(record, response).strip()


_EXAM_OPTIONS = "abcde"


def wanjuan_exam(record: dict) -> str:
    """A WanJuan-1.0 exam item (no `content` field): the question, its non-empty options, the standard answer and the
    worked explanation, as a page of an exercise book would show them."""
    lines = [_field(record, "q_main").strip()]
    lines += [
        f"{letter.upper()}. {str(record.get(f'option_{letter}') or '').strip()}"
        for letter in _EXAM_OPTIONS
        if str(record.get(f"option_{letter}") or "").strip()
    ]
    answer = str(record.get("std_ans") or record.get("answer") or "").strip()
    detail = str(record.get("answer_detail") or "").strip()
    if not answer and not detail:
        raise SkipRecord("exam item has neither an answer nor an explanation")
    lines += [f"答案：{answer}"] if answer else []
    lines += [f"解析：{detail}"] if detail else []
    return "\n".join(lines)


def mnbvc_qa(record: dict) -> str:
    return f"问：{_field(record, '问').strip()}\n答：{_field(record, '答').strip()}"


def tiny_codes(record: dict) -> str:
    return f"{_field(record, 'prompt').strip()}\n{_field(record, 'response').strip()}"


FORMATTERS: dict[str, Callable[..., str]] = {
    "text": text,
    "gsm8k": gsm8k,
    "math23k": math23k,
    "ape210k": math23k,
    "math": math_competition,
    "instruction": instruction,
    "wanjuan_exam": wanjuan_exam,
    "mnbvc_qa": mnbvc_qa,
    "tiny_codes": tiny_codes,
}


def get_formatter(name: str, **options) -> Callable[[dict], str]:
    if name not in FORMATTERS:
        raise ValueError(f"unknown formatter {name!r}; choose one of {sorted(FORMATTERS)}")
    fn = FORMATTERS[name]
    return (lambda record: fn(record, **options)) if options else fn
