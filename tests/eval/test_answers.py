import pytest

from minimath.eval.answers import (
    extract_answer, extract_choice, last_boxed, last_number, math_equal, numbers_equal, to_number,
)

EXTRACT = [
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "auto", "72"),
    ("So the total is 5 + 3 = 8. The answer is 8.", "auto", "8"),
    ("The answer is $1,234.", "auto", "1,234"),
    ("第1步：120 × 80% = 96\n答：96", "auto", "96"),
    ("答案是 14.4。", "auto", "14.4"),
    ("Thus $x = \\boxed{\\frac{1}{2}}$.", "auto", "\\frac{1}{2}"),
    ("No marker, numbers 3 and 4.5 here", "auto", "4.5"),
    ("Final Answer: The final answer is $\\frac{\\sqrt{3}}{2}$. I hope it is correct.", "boxed", "\\frac{\\sqrt{3}}{2}"),
    ("We get \\boxed{x^{2}+1} at the end", "boxed", "x^{2}+1"),
    ("The answer is 7 but later 9", "last_number", "9"),
    ("It is 3/4 of the rope", "last_number", "3/4"),
    ("about 35% of them", "last_number", "35%"),
    ("nothing numeric", "auto", None),
]


@pytest.mark.parametrize("text,method,expected", EXTRACT)
def test_extract_answer(text, method, expected):
    assert extract_answer(text, method) == expected


def test_last_boxed_balances_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"
    assert last_boxed("\\boxed{unclosed") is None and last_number("none") is None


EQUAL = [
    ("72", "72"), ("1,234", "1234"), ("14.40", "14.4"), ("72/5", "14.4"), ("0.6667", "((2)/(3))"),
    ("2/3", "((2)/(3))"), ("5.7", "5((7)/(10))"), ("57/10", "5(7/10)"), ("35%", "35%"), ("0.35", "35%"),
    ("35", "35%"), ("\\frac{2}{3}", "((2)/(3))"), ("$12", "12"), ("96个", "96"), ("-3", "-3"), ("8.", "8"),
]
NOT_EQUAL = [("73", "72"), ("0.67", "((2)/(3))"), ("3.5", "35%"), ("-3", "3"), ("abc", "3"), (None, "3"),
             ("12", "1.2")]


@pytest.mark.parametrize("pred,gold", EQUAL)
def test_numbers_equal(pred, gold):
    assert numbers_equal(pred, gold)


@pytest.mark.parametrize("pred,gold", NOT_EQUAL)
def test_numbers_not_equal(pred, gold):
    assert not numbers_equal(pred, gold)


def test_to_number_rejects_expressions():
    assert to_number("__import__('os')") is None and to_number("2**10") is None


@pytest.mark.parametrize("pred,gold,equal", [
    ("\\frac{1}{2}", "0.5", True), ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("x^2+2x+1", "(x+1)^2", True), ("\\frac{1}{3}", "0.5", False), ("x+1", "x-1", False), (None, "1", False),
    ("\\left(", "1", False),
])
def test_math_equal(pred, gold, equal):
    assert math_equal(pred, gold) is equal


@pytest.mark.parametrize("text,letter", [("The answer is B.", "B"), ("A or C? I pick D", "D"), ("答案：C", "C"),
                                         ("ABC news", None), ("no choice", None)])
def test_extract_choice(text, letter):
    assert extract_choice(text) == letter
