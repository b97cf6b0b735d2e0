from fractions import Fraction

import pytest

from minimath.eval.answers import (
    answer_value,
    extract_answer,
    extract_choice,
    last_boxed,
    marked_span,
    math_equal,
    numbers_equal,
)

# (model output, extraction method, the answer as the grammar reads it)
EXTRACT = [
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "auto", "72"),
    ("So the total is 5 + 3 = 8. The answer is 8.", "auto", "8"),
    ("The answer is $1,234.", "auto", "1234"),
    ("第1步：120 × 80% = 96\n答：96", "auto", "96"),
    ("答案是 14.4。", "auto", "14.4"),
    ("Thus $x = \\boxed{\\frac{1}{2}}$.", "auto", "((1)/(2))"),
    ("No marker, numbers 3 and 4.5 here", "auto", "4.5"),
    (
        "Final Answer: The final answer is $\\frac{\\sqrt{3}}{2}$. I hope it is correct.",
        "boxed",
        "\\frac{\\sqrt{3}}{2}",
    ),
    ("We get \\boxed{x^{2}+1} at the end", "boxed", "x^{2}+1"),
    ("The answer is 7 but later 9", "last_number", "9"),
    ("It is 3/4 of the rope", "last_number", "3/4"),
    ("about 35% of them", "last_number", "35%"),
    ("nothing numeric", "auto", None),
    # the datasets' own formats are read whole, never as their last digit run
    ("答：((2)/(3))", "auto", "((2)/(3))"),
    ("答：5((7)/(10))", "auto", "5((7)/(10))"),
    ("The answer is \\frac{72}{5}.", "auto", "((72)/(5))"),
    ("答：4(5/11)", "auto", "4((5)/(11))"),
    ("The answer is 1/0.9.", "auto", "1/0.9"),
    ("答：3又1/2", "auto", "3((1)/(2))"),
    ("答：(45+39)/(45-39)", "auto", "(45+39)/(45-39)"),
    ("答：((4)/(15))", "last_number", "((4)/(15))"),
    # the span after the last marker: units, currency, sentence punctuation and the working before '=' drop out
    ("答：这辆汽车行了192千米。", "auto", "192"),
    ("答：480÷(3+5)=60（千米）", "auto", "60"),
    ("The answer is 5 cm^2.", "auto", "5"),
    ("The answer is 12 apples. Then a new question: 99 + 1", "auto", "12"),
    ("#### 5\nThe answer is 6.", "auto", "6"),
    ("解答：列式 x = 44 × 20\n第1步：44 × 20 = 880\n答：880", "auto", "880"),
    ("Step 1: 5 + 3 = 8\nStep 2: 8 × 2 = 16", "auto", "16"),
    ("The answer is -3.", "auto", "-3"),
    ("The answer is .5", "auto", "0.5"),
    ("The answer is \\$1{,}200.", "auto", "1200"),
    ("The answer is ３５％。", "auto", "35%"),
]


@pytest.mark.parametrize("text,method,expected", EXTRACT)
def test_extract_answer(text, method, expected):
    assert extract_answer(text, method) == expected


def test_extract_answer_rejects_unknown_methods():
    with pytest.raises(ValueError):
        extract_answer("1", "first_number")


def test_last_boxed_balances_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"
    assert last_boxed("\\boxed{unclosed") is None
    assert marked_span("no marker here") is None and marked_span("#### 4\nThe answer is 5.") == "5"


VALUES = {
    "880": 880,
    "1,234": 1234,
    "14.40": Fraction(72, 5),
    "35%": Fraction(7, 20),
    "((2)/(3))": Fraction(2, 3),
    "5((7)/(10))": Fraction(57, 10),
    "-2((1)/(2))": Fraction(-5, 2),
    "5(7/10)": Fraction(57, 10),
    "4(5/11)": Fraction(49, 11),
    "(1/10)": Fraction(1, 10),
    "3又1/2": Fraction(7, 2),
    "2又3分之1": Fraction(7, 3),
    "\\frac{72}{5}": Fraction(72, 5),
    "\\dfrac{17}{50}": Fraction(17, 50),
    "\\frac 59": Fraction(5, 9),
    "1\\frac{4}{5}": Fraction(9, 5),
    "-\\frac{1}{2}": Fraction(-1, 2),
    "10,\\!080": 10080,
    "\\$32,\\!348": 32348,
    "10\\%": Fraction(1, 10),
    "90^\\circ": 90,
    "(45+39)/(45-39)": 14,
    "420/7/5": 12,
    "(3/4)/(1/3)": Fraction(9, 4),
    "3.14*[(3+2)^2-3^2]": Fraction(1256, 25),
    "2.75-1(5/6)+3(1/4)-2(1/6)": 2,
    "3**2": 9,
    "1/0.9": Fraction(10, 9),
    "(2950+25-+(1998-1997))*25": 74350,
    ".0000672": Fraction(672, 10**7),
}


@pytest.mark.parametrize("text,value", VALUES.items())
def test_answer_value_reads_every_format(text, value):
    assert answer_value(text) == value


@pytest.mark.parametrize("text", ["", "abc", "x=3", "__import__('os')", "2**10**10", "3/0", "\\sqrt{2}", "(1,2)"])
def test_answer_value_is_none_for_what_is_not_a_number(text):
    assert answer_value(text) is None


EQUAL = [
    ("72", "72"),
    ("1234", "1,234"),
    ("14.40", "14.4"),
    ("72/5", "14.4"),
    ("2/3", "((2)/(3))"),
    ("5.7", "5((7)/(10))"),
    ("57/10", "5(7/10)"),
    ("35%", "35%"),
    ("0.35", "35%"),
    ("35", "35%"),
    ("((2)/(3))", "((2)/(3))"),
    ("\\frac{2}{3}", "((2)/(3))"),
    ("-3", "-3"),
    ("8", "8.00"),
    ("14", "(45+39)/(45-39)"),
    ("49/11", "4(5/11)"),
    # a decimal stands for a non-terminating value when it equals it rounded to its own places (at least two)
    ("0.67", "((2)/(3))"),
    ("0.667", "((2)/(3))"),
    ("0.33", "((1)/(3))"),
    ("33.33%", "((1)/(3))"),
    ("((80)/(3))", "26.67"),
]
NOT_EQUAL = [
    ("73", "72"),
    ("-3", "3"),
    ("abc", "3"),
    (None, "3"),
    ("12", "1.2"),
    ("3.5", "35%"),
    # never a relative tolerance: an integer off by one is wrong however large the gold
    ("70001", "70000"),
    ("326.51", "326.5"),
    ("1000001", "1000000"),
    # a rounded decimal does not stand for a terminating value, and needs two places
    ("0.3", "((1)/(3))"),
    ("0.7", "((2)/(3))"),
    ("0.66", "((2)/(3))"),
    ("14.3", "14.4"),
    ("0.254", "0.25"),
    # the false positives of reading a fraction's last digit run
    ("((4)/(15))", "15"),
    ("1/0.9", "9"),
    ("\\frac{72}{5}", "5"),
]


@pytest.mark.parametrize("pred,gold", EQUAL)
def test_numbers_equal(pred, gold):
    assert numbers_equal(pred, gold)


@pytest.mark.parametrize("pred,gold", NOT_EQUAL)
def test_numbers_not_equal(pred, gold):
    assert not numbers_equal(pred, gold)


def test_bare_percent_is_a_setting():
    assert numbers_equal("35", "35%", bare_percent=True) and not numbers_equal("35", "35%", bare_percent=False)
    assert numbers_equal("0.35", "35%", bare_percent=False) and numbers_equal("35%", "0.35", bare_percent=False)


@pytest.mark.parametrize(
    "pred,gold,equal",
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
        ("x^2+2x+1", "(x+1)^2", True),
        ("\\frac{1}{3}", "0.5", False),
        ("x+1", "x-1", False),
        (None, "1", False),
        ("\\left(", "1", False),
        ("\\frac{14}{3}", "\\frac{14}{3}", True),
        ("3\\sqrt{13}", "3\\sqrt{13}", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("\\pi", "\\pi", True),
        ("70001", "70000", False),
        ("10", "10\\%", True),
        ("1,000", "1000", True),
    ],
)
def test_math_equal(pred, gold, equal):
    assert math_equal(pred, gold) is equal


@pytest.mark.parametrize(
    "text,letter",
    [("The answer is B.", "B"), ("A or C? I pick D", "D"), ("答案：C", "C"), ("ABC news", None), ("no choice", None)],
)
def test_extract_choice(text, letter):
    assert extract_choice(text) == letter
