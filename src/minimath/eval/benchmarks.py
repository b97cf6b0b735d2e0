"""The public benchmarks, one record each: how a record of its published format becomes a `Doc`, how its outputs
are scored, how the standard protocol prompts it, the project's fixed few-shot exemplars, and its column in the
report's table. Adding a benchmark in a public format is one `Benchmark` here and one `conf/task/<name>.yaml`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minimath.errors import UserError
from minimath.eval.documents import LETTERS, Doc

RESOURCES = Path(__file__).parent / "resources"


def _field(record: dict, name: str, where: str) -> Any:
    if name not in record:
        raise UserError(f"{where}: missing field {name!r}")
    return record[name]


def gsm8k_doc(record: dict, where: str) -> Doc:
    answer = str(_field(record, "answer", where))
    if "####" not in answer:
        raise UserError(f"{where}: GSM8K answer has no '#### N'")
    steps, _, gold = answer.rpartition("####")
    return Doc(str(_field(record, "question", where)), gold.strip().replace(",", ""), solution=steps.strip())


def math23k_doc(record: dict, where: str) -> Doc:
    from minimath.data.synth.cot import CotError, record_to_cot

    doc = Doc(str(_field(record, "original_text", where)), str(_field(record, "ans", where)))
    try:
        doc.solution = record_to_cot(record).split("\n", 1)[1] if record.get("equation") else ""
    except CotError:
        doc.solution = ""
    return doc


def math_doc(record: dict, where: str) -> Doc:
    from minimath.eval.answers import last_boxed

    solution = str(_field(record, "solution", where))
    gold = record.get("answer") or last_boxed(solution)
    if gold is None:
        raise UserError(f"{where}: MATH solution has no \\boxed{{}} answer")
    return Doc(str(_field(record, "problem", where)), str(gold), solution=solution)


def choice_doc(record: dict, where: str) -> Doc:
    """MMLU/C-Eval/CMMLU rows: question + A–D (columns, or HF `choices` list) + answer letter or index."""
    rec = {k.lower(): v for k, v in record.items()}
    if "choices" in rec:
        choices = list(rec["choices"])
    else:
        choices = [str(_field(rec, letter.lower(), where)) for letter in LETTERS]
    if len(choices) != 4:
        raise UserError(f"{where}: expected 4 choices, found {len(choices)}")
    answer = rec.get("answer")
    gold = LETTERS[int(answer)] if isinstance(answer, int) or str(answer).isdigit() else str(answer).strip().upper()
    if gold not in LETTERS:
        raise UserError(f"{where}: answer {answer!r} is not one of A-D")
    return Doc(
        str(_field(rec, "question", where)),
        gold,
        choices=[str(c) for c in choices],
        subject=str(rec.get("subject", "")),
    )


def svamp_doc(record: dict, where: str) -> Doc:
    """SVAMP (a JSON list, or the hub's rows): the body, then the question, make the problem (a body without a
    closing period gets one); the equation is an exemplar's solution. The answer is a JSON number (`3.0` is 3)."""
    body = str(_field(record, "Body", where)).strip()
    answer = _field(record, "Answer", where)
    gold = str(int(answer)) if isinstance(answer, float) and answer.is_integer() else str(answer)
    equation = str(record.get("Equation") or "").strip()
    return Doc(
        f"{body if body.endswith('.') else body + '.'} {str(_field(record, 'Question', where)).strip()}",
        gold,
        solution=f"{equation} = {gold}" if equation else "",
    )


@dataclass(frozen=True)
class Benchmark:
    format: str  # `format:` in conf/task/<name>.yaml
    load_doc: Callable[[dict, str], Doc]  # (record, "file:line" for errors) -> Doc
    kind: str  # how an output is scored (runner.score_output): numeric | math | choice
    prompt_style: str  # how the standard protocol writes its prompts: a key of prompts.PROMPT_STYLES
    # The project's own exemplars, written in the benchmark's format (as lm-evaluation-harness ships fixed
    # chain-of-thought exemplars): used when the task's few-shot split is not available. Multiple choice has none
    # (its shots are per subject).
    fixed_fewshot: Path | None = None
    column: str | None = None  # its title in the report's table; None: shown after the report's columns
    in_math_average: bool = False  # one of the report's "Math Avg." columns


# In the order of the report's table: C-Eval, CMMLU, MMLU, GSM8K, MATH, MATH23K (and the average of the math ones).
BENCHMARKS = {
    b.format: b
    for b in (
        Benchmark("ceval", choice_doc, "choice", "ceval", column="C-Eval"),
        Benchmark("cmmlu", choice_doc, "choice", "cmmlu", column="CMMLU"),
        Benchmark("mmlu", choice_doc, "choice", "mmlu", column="MMLU"),
        Benchmark("gsm8k", gsm8k_doc, "numeric", "gsm8k", RESOURCES / "fewshot_gsm8k.jsonl", "GSM8K", True),
        Benchmark("math", math_doc, "math", "minerva", RESOURCES / "fewshot_math.jsonl", "MATH", True),
        Benchmark("math23k", math23k_doc, "numeric", "math23k", RESOURCES / "fewshot_math23k.json", "MATH23K", True),
        Benchmark("ape210k", math23k_doc, "numeric", "math23k", RESOURCES / "fewshot_math23k.json"),
        Benchmark("svamp", svamp_doc, "numeric", "gsm8k"),
    )
}
