"""The public benchmarks, one record each: how a record of its published format becomes a `Doc`, how its outputs
are scored, how the standard protocol prompts it, the project's fixed few-shot exemplars, and its column in the
report's table. Adding a benchmark in a public format is one `Benchmark` here and one `conf/task/<name>.yaml`.
A `Suite` is a published results table over several tasks (JiuZhang3.0's): `tasks=<suite>` runs them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from minimath.errors import UserError
from minimath.eval.documents import LETTERS, Doc, question_with_options
from minimath.numbers import format_number

RESOURCES = Path(__file__).parent / "resources"


def _field(record: dict, name: str, where: str) -> Any:
    if name not in record:
        raise UserError(f"{where}: missing field {name!r}")
    return record[name]


def json_number(value: Any) -> str:
    """A dataset's JSON number as the gold it stands for: `51.0` is 51, `4.5` stays 4.5, and a float that is the
    double nearest a fraction of small denominator is that fraction (GSM-Hard's program result 14053029.666666666
    is 42159089/3, so a model's 14053029.67 is read against the exact value). A string is kept as written."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).strip()
    simple = Fraction(value).limit_denominator(1000)
    return format_number(simple) if float(simple) == value else repr(value)


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
    closing period gets one); the equation is an exemplar's solution. The answer is a JSON number (`json_number`)."""
    body = str(_field(record, "Body", where)).strip()
    gold = json_number(_field(record, "Answer", where))
    equation = str(record.get("Equation") or "").strip()
    return Doc(
        f"{body if body.endswith('.') else body + '.'} {str(_field(record, 'Question', where)).strip()}",
        gold,
        solution=f"{equation} = {gold}" if equation else "",
    )


def asdiv_doc(record: dict, where: str) -> Doc:
    """ASDiv (JiuZhang3.0's jsonl, the hub's EleutherAI/asdiv rows): the body, then the question; the answer carries
    its unit in parentheses (`9 (apples)` is 9; a name or a word stays a word); the formula (`7+2=9`) is an
    exemplar's solution."""
    answer = re.sub(r"\(.*?\)", "", str(_field(record, "answer", where))).strip()
    body, question = (str(_field(record, k, where)).strip() for k in ("body", "question"))
    return Doc(f"{body} {question}", answer, solution=str(record.get("formula") or "").strip())


def asdiv_multiple_answers(record: dict) -> bool:
    """ASDiv problems with several answers (`3 (red); 4 (blue)`), which JiuZhang3.0's evaluation leaves out."""
    return ";" in str(record.get("answer", ""))


def pal_doc(record: dict, where: str) -> Doc:
    """PAL's `{input, target}` records, as ToRA and JiuZhang3.0 ship MAWPS (their test.jsonl adds each line's
    subset as `type`, kept as the category) and GSM-Hard (`code`, the program whose float result is the target, is
    an exemplar's solution). The target is a JSON number (`json_number`)."""
    return Doc(
        str(_field(record, "input", where)).strip(),
        json_number(_field(record, "target", where)),
        solution=str(record.get("code") or "").strip(),
        category=str(record.get("type") or ""),
    )


def tabmwp_doc(record: dict, where: str) -> Doc:
    """TabMWP (a JSON line, or a value of PromptPG's id-keyed problems_*.json): the table in its pipe layout under
    JiuZhang3.0's heading, the question, and for a multiple-choice question its options (written as JiuZhang3.0
    writes them, a Python list); a yes/no gold adds its "(Yes or No)" as JiuZhang3.0 does. The answer stays as
    published: a number, or a word compared as a word."""
    title = record.get("table_title")
    regarding = f'regarding "{title}" ' if title else ""
    question = (
        f"Read the following table {regarding}and answer a question:\n"
        f"{_field(record, 'table', where)}\n{str(_field(record, 'question', where)).strip()}"
    )
    if record.get("choices"):
        question += f" Please select from the following options: {list(record['choices'])}"
    answer = str(_field(record, "answer", where)).strip()
    if answer.lower() in ("yes", "no"):
        question += " (Yes or No)"
    return Doc(question, answer, solution=str(record.get("solution") or "").strip())


def carp_doc(record: dict, where: str) -> Doc:
    """CARP-en (`content`, `answer` as a spaced LaTeX expression — `x = - 4`, `\\frac { 1 } { 2 }`, `a \\ge 3` —,
    `steps`, and its expression graph): the answer is compared through the MATH equality (math-verify)."""
    return Doc(
        str(_field(record, "content", where)).strip(),
        str(_field(record, "answer", where)).strip(),
        solution=str(record.get("steps") or "").strip(),
    )


def table_and_question(doc: Doc) -> str:
    """A TabMWP item without the heading line `tabmwp_doc` puts first (JiuZhang3.0's framing, shared by every
    item: with a short title its words and a table's first cells make a 13-gram of their own): the table, the
    question and its options."""
    return doc.question.split("\n", 1)[-1]


@dataclass(frozen=True)
class Benchmark:
    format: str  # `format:` in conf/task/<name>.yaml
    load_doc: Callable[[dict, str], Doc]  # (record, "file:line" for errors) -> Doc
    kind: str  # how an output is scored (runner.score_output): numeric | math | choice | number_or_text
    prompt_style: str  # how the standard protocol writes its prompts: a key of prompts.PROMPT_STYLES
    # The project's own exemplars, written in the benchmark's format (as lm-evaluation-harness ships fixed
    # chain-of-thought exemplars): used when the task's few-shot split is not available. Multiple choice has none
    # (its shots are per subject).
    fixed_fewshot: Path | None = None
    column: str | None = None  # its title in the report's table; None: shown after the report's columns
    in_math_average: bool = False  # one of the report's "Math Avg." columns
    skip: Callable[[dict], bool] | None = None  # records the benchmark's published evaluation leaves out
    # The text of an item that training data must not contain (minimath.data.eval_sets indexes its n-grams): the
    # question, and a multiple-choice item's options lettered as a copy writes them (`A. 24`, `(A) 24`: the letter
    # is one unit either way, so a copy with letters shares the n-grams that cross from one option to the next).
    protected: Callable[[Doc], str] = question_with_options


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
        Benchmark("svamp", svamp_doc, "numeric", "gsm8k", RESOURCES / "fewshot_svamp.json"),
        # JiuZhang3.0's suite (with GSM8K and SVAMP above), in the layouts of its eval/data/<name>/test.jsonl
        Benchmark("math500", math_doc, "math", "minerva", RESOURCES / "fewshot_math.jsonl"),
        Benchmark(
            "asdiv",
            asdiv_doc,
            "number_or_text",
            "gsm8k",
            RESOURCES / "fewshot_asdiv.jsonl",
            skip=asdiv_multiple_answers,
        ),
        Benchmark("mawps", pal_doc, "numeric", "gsm8k", RESOURCES / "fewshot_mawps.jsonl"),
        Benchmark("gsm_hard", pal_doc, "numeric", "gsm8k", RESOURCES / "fewshot_gsm_hard.jsonl"),
        Benchmark(
            "tabmwp",
            tabmwp_doc,
            "number_or_text",
            "gsm8k",
            RESOURCES / "fewshot_tabmwp.jsonl",
            protected=table_and_question,
        ),
        Benchmark("carp_en", carp_doc, "math", "gsm8k", RESOURCES / "fewshot_carp_en.jsonl"),
    )
}


@dataclass(frozen=True)
class Suite:
    """A published results table: its tasks (names of conf/task/*.yaml) with their column titles, in its order.
    `tasks=<suite>` runs them; results.md then prints this table, with the average of its columns."""

    columns: tuple[tuple[str, str], ...]  # (task, column title)
    average: str = "Avg."

    @property
    def tasks(self) -> list[str]:
        return [task for task, _ in self.columns]


SUITES = {
    # JiuZhang3.0 (RUCAIBox/JiuZhang3.0 sh/eval/*.sh and its paper's tables): the natural-language table's GSM8k,
    # MATH (MATH-500, its `math-oai`), SVAMP, ASDiv, MAWPS and CARP, and the tool table's GSM-Hard and TabMWP.
    "jiuzhang": Suite(
        (
            ("gsm8k", "GSM8k"),
            ("math500", "MATH"),
            ("gsm_hard", "GSM-H"),
            ("svamp_all", "SVAMP"),
            ("tabmwp", "TabMWP"),
            ("asdiv", "ASDiv"),
            ("mawps", "MAWPS"),
            ("carp_en", "CARP"),
        )
    ),
}
