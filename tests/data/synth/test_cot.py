import random
import re
from fractions import Fraction

import pytest

from minimath.data.synth.cot import CotError, build_cot, record_to_cot
from minimath.data.synth.expression import evaluate, parse_expression
from minimath.numbers import agrees_with_answer, format_number, parse_number

STEP = re.compile(r"^(?:Step \d+: |第\d+步：)(.+) = (\S+)(?: ≈ \S+)?$")


def random_expression(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        kind = rng.random()
        if kind < 0.55:
            return str(rng.randint(1, 500))
        if kind < 0.7:
            return f"{rng.randint(1, 999) / 10:g}"
        if kind < 0.85:
            return f"{rng.randint(1, 99)}%"
        return f"(({rng.randint(1, 9)})/({rng.randint(2, 12)}))"
    op = rng.choice("+-*/")
    return f"({random_expression(rng, depth - 1)}{op}{random_expression(rng, depth - 1)})"


def math23k_ans(value: Fraction, rng: random.Random) -> str:
    text = format_number(value)
    if "/" not in text:
        return text
    if rng.random() < 0.5:
        return f"(({value.numerator})/({value.denominator}))"
    return f"{float(value):.2f}"  # Math23k often rounds to two decimals


def check_cot(text: str, ans: str) -> None:
    lines = text.split("\n")
    for line in lines[2:-1]:
        expression, result = STEP.match(line).groups()
        assert evaluate(parse_expression(expression.replace("×", "*").replace("÷", "/"))) == parse_number(result)
    final = re.search(r"(?:The answer is |答：)(.+?)\.?$", lines[-1])[1]
    assert parse_number(final) == parse_number(ans)


def test_cot_final_answer_equals_ans_for_thousands_of_random_equations():
    rng = random.Random(2024)
    checked = 0
    for _ in range(3000):
        equation = "x=" + random_expression(rng, depth=3)
        try:
            value = evaluate(parse_expression(equation[2:]))
        except (ValueError, ZeroDivisionError):
            continue  # division by zero drawn at random
        ans = math23k_ans(value, rng)
        question = rng.choice(["小明有一些苹果，一共有多少个？", "How many apples are there?"])
        check_cot(build_cot(question, equation, ans), ans)
        checked += 1
    assert checked > 2500


@pytest.mark.parametrize(
    "record,expected",
    [
        (
            {
                "original_text": "某班有学生120人，80%参加了活动，其中15%是班干部，班干部有多少人？",
                "equation": "x=120*80%*15%",
                "ans": "14.4",
            },
            "答：14.4",
        ),
        (
            {
                "original_text": "A cake is cut; 2/3 of it is eaten. How much is left?",
                "equation": "x=1-((2)/(3))",
                "ans": "((1)/(3))",
            },
            "The answer is 1/3.",
        ),
        ({"original_text": "折扣题", "equation": "x=80*(1-35%)", "ans": "52"}, "答：52"),
        ({"original_text": "Mixed", "equation": "x=5((7)/(10))+3", "ans": "8.7"}, "The answer is 8.7."),
        ({"original_text": "Percent answer", "equation": "x=7/20", "ans": "35%"}, "The answer is 35%."),
    ],
)
def test_record_to_cot(record, expected):
    text = record_to_cot(record)
    assert text.endswith(expected)
    assert text.startswith(("题目：", "Question: "))


@pytest.mark.parametrize(
    "record,message",
    [
        ({"original_text": "q", "equation": "x=1+2", "ans": "4"}, "gives 3"),
        ({"original_text": "q", "equation": "x=1/0", "ans": "4"}, "division by zero"),
        ({"original_text": "q", "equation": "x=1+", "ans": "1"}, "expected"),
        ({"original_text": "q", "ans": "1"}, "lacks equation"),
    ],
)
def test_bad_records_raise_cot_error(record, message):
    with pytest.raises(CotError, match=message):
        record_to_cot(record)


def test_rounded_answer_is_marked_approximate():
    text = build_cot("q", "x=20/(1-25%)", "26.67")
    assert "= 80/3 ≈ 26.67" in text and text.endswith("The answer is 26.67.")
    assert agrees_with_answer(Fraction(80, 3), "26.67")


def test_an_expression_answer_gets_its_value_as_the_final_line():
    cot = record_to_cot(
        {
            "original_text": "45与39的和除以它们的差，商是多少？",
            "equation": "x=(45+39)/(45-39)",
            "ans": "(45+39)/(45-39)",
        }
    )
    assert cot.endswith("第3步：84 ÷ 6 = 14\n答：14")
