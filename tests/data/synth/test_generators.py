import random
import re

import pytest

from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.data.synth.cot import record_to_cot
from minimath.data.synth.equations import LinearEquationSource
from minimath.data.synth.expression import evaluate, parse_equation, parse_expression
from minimath.data.synth.general import GeneralTextSource
from minimath.data.synth.textbook import TextbookSource
from minimath.data.synth.word_problems import TEMPLATES, WordProblemSource
from minimath.numbers import parse_number

ALL = [
    ArithmeticSource(),
    ArithmeticSource(kinds=("integer", "decimal", "fraction"), languages=("en", "zh"), worked_steps=True),
    LinearEquationSource(),
    WordProblemSource(),
    TextbookSource(),
    GeneralTextSource(),
]


@pytest.mark.parametrize("source", ALL, ids=lambda s: type(s).__name__)
def test_seeded_and_deterministic(source):
    a = [source.document(random.Random(11)) for _ in range(2)]
    assert a[0] == a[1] and a[0].strip()
    assert source.document(random.Random(12)) != a[0]


def _value(side: str):
    return evaluate(parse_expression(side.replace("×", "*").replace("÷", "/")))


def test_arithmetic_every_form_of_every_line_is_equal():
    """`a op b = step = ... = answer`: every part evaluates to the same exact number."""
    source = ArithmeticSource(
        max_digits=3, kinds=("integer", "decimal", "fraction"), worked_steps=True, languages=("en", "zh")
    )
    docs = source.documents(random.Random(0))
    for _ in range(400):
        for line in next(docs).split("\n"):
            if line in ("Calculate:", "计算："):
                continue
            parts = line.split(" = ")
            values = {_value(p) for p in parts}
            assert len(values) == 1, line


def test_arithmetic_no_negative_results_unless_allowed():
    src = ArithmeticSource(operators=("-",), lines_per_doc=50)
    assert "= -" not in src.document(random.Random(3))


def test_arithmetic_bad_options():
    with pytest.raises(ValueError, match="operators"):
        ArithmeticSource(operators=("^",))
    with pytest.raises(ValueError, match="kinds"):
        ArithmeticSource(kinds=("complex",))
    with pytest.raises(ValueError, match="at least 1"):
        ArithmeticSource(max_digits=0)


def test_linear_equation_solutions_check_by_substitution():
    source = LinearEquationSource(problems_per_doc=1)
    rng = random.Random(1)
    for _ in range(500):
        lang = rng.choice(("en", "zh"))
        solved = source.problem(rng, lang)
        question = solved.question.removeprefix("Solve ").removeprefix("解方程：").rstrip(".")
        for equation in question.split(", "):
            assert _check(equation, solved.answer), (equation, solved.answer)


def _check(equation: str, solution: dict[str, int]) -> bool:
    """Evaluate both sides with the solution substituted (coefficients written as `3x`, `9(x + 8)`)."""

    def side(text: str):
        text = re.sub(r"(\d)\(", r"\1*(", text)
        for var, val in solution.items():
            text = re.sub(rf"(\d){var}", rf"\1*({val})", text)
            text = re.sub(rf"(?<![\d)]){var}", f"({val})", text)
        return evaluate(parse_expression(text))

    lhs, rhs = equation.split(" = ")
    return side(lhs) == side(rhs)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_word_problem_records_have_clean_correct_answers(template):
    source = WordProblemSource(templates=(template,))
    rng = random.Random(template)
    for i in range(200):
        record = source.record(rng, i)
        value = evaluate(parse_equation(record["equation"]))
        assert parse_number(record["ans"]) == value
        assert value >= 0
        assert record_to_cot(record)  # the CoT builder accepts every generated record


def test_textbook_and_general_cover_both_languages():
    for source in (TextbookSource(), GeneralTextSource()):
        text = "\n".join(source.document(random.Random(s)) for s in range(20))
        assert re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[A-Za-z]{4}", text)
