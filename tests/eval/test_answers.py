from fractions import Fraction

import pytest

from minimath.eval.answers import (
    answer_value,
    asks_percent,
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
    # the report protocol reads the stated answer too; its last number only where no marker is
    ("The answer is 7 but later 9", "last_number", "7"),
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


# --- the scorer's false accepts and false rejects (issue 26), each in the shape real model outputs have ---

RACE = (
    "Lena, Quinn, Sam and Xavier ran a race. Quinn finished after Lena but before Xavier, and Sam finished right "
    "after Quinn. Write the first letters of their names in the order they finished, first to last."
)


@pytest.mark.parametrize(
    "output,correct",
    [
        (
            "Lena finished before Quinn, so L comes first.\nSam came right after Quinn, then Xavier.\n"
            "The order is $\\boxed{LQSX}$.",
            True,
        ),
        (
            "Quinn finished after Lena but before Xavier, so the order is L, X, Q... wait.\n"
            "So the order is $\\boxed{LXQS}$.",
            False,
        ),
        ("Sorting by finishing time we get \\boxed{QXLS}.", False),
        ("The answer is $\\boxed{L, Q, S, X}$.", True),
    ],
)
def test_letters_are_compared_as_letters_in_order(output, correct):
    """math-verify reads `LXQS` as the product L·X·Q·S, equal to any permutation of the gold `LQSX`."""
    assert math_equal(extract_answer(output, "boxed"), "LQSX", RACE) is correct


def test_letters_compare_as_a_set_only_when_the_problem_asks_for_several_in_no_order():
    inverses = (
        "Which of the following functions have inverses?\n\nA. $f(x) = x^2,$ $x \\ge 0.$\nB. $g(x) = x^3 - x.$\n"
        "C. $h(x) = 2x + 1.$\n\nEnter the letters of the functions that have inverses, separated by commas."
    )
    output = "$f$ is increasing on $[0,\\infty)$ and $h$ is linear; $g(-1) = g(1)$.\nThe answer is $\\boxed{C, A}$."
    assert math_equal(extract_answer(output, "boxed"), "\\text{A, C}", inverses)
    assert not math_equal("A, B", "\\text{A, C}", inverses) and not math_equal("A", "\\text{A, C}", inverses)
    arrange = "Arrange the numbers $A = 2^{10},$ $B = 3^6,$ $C = 5^4,$ $D = 10^3$ from greatest to least."
    assert math_equal("DCBA", "ABCD", arrange) is False and math_equal("\\text{(C)}", "\\text{(C)}")


JANET = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?"
)


@pytest.mark.parametrize("method", ["auto", "last_number"])
def test_the_answer_is_the_stated_one_not_a_number_written_after_it(method):
    output = (
        "Janet's ducks lay 16 eggs and she eats 3, so 16 - 3 = 13 eggs are left.\n"
        "She bakes with 4, so 13 - 4 = 9 eggs are sold.\n"
        "The answer is 6.\n\n"
        "Each egg sells for $2, so she makes 9 * 2 = 18"
    )
    assert extract_answer(output, method) == "6" and not numbers_equal(extract_answer(output, method), "18")


@pytest.mark.parametrize(
    "output,stated",
    [
        (
            "She sells 16 - 3 - 4 = 9 eggs for $2 each: 9 * 2 = 18.\nThe answer (arabic numerals) is 18.\n"
            "I hope this helps!",
            "18",
        ),
        ("She sells 9 eggs.\nThe final answer (in dollars) is: $18.\nLet me know if you have more questions 2", "18"),
        ("She sells 9 eggs at $2 each.\n**Answer:** 18\n\nFollow-up: with 5 eggs it would be 10", "18"),
        ("9 eggs at $2 each.\nThe answer is 9 * 2 = 18 dollars.", "18"),
        ("The answer is 18, because 16 - 3 - 4 = 9 and 9 * 2 = 19.", "18"),
    ],
)
def test_answer_marker_variants_are_read(output, stated):
    assert extract_answer(output, "auto") == stated == extract_answer(output, "last_number")


def test_no_number_is_lifted_out_of_an_expression_in_an_unknown():
    # gold 3/4: the last line is a tautology, whose numbers answer nothing
    output = "Let the tank hold x liters. Three quarters of it is 3/4·x.\nSo x = 4/3·(3/4·x)."
    assert extract_answer(output, "auto") is None and extract_answer(output, "last_number") is None
    assert extract_answer("Dividing both sides by 4/3 we get x = 4/3(3/4x)", "auto") is None
    assert extract_answer("Subtract 3 from both sides.\nSo x + 3 = 11 gives 8", "auto") == "8"


@pytest.mark.parametrize(
    "output,gold,correct",
    [
        ("The rectangle is 8 cm by 6 cm, so its area is $8 \\cdot 6 = \\boxed{48 \\text{cm}^2}$.", "48", True),
        ("The square's side is 2 cm, so the area is $2^2 = \\boxed{4 \\text{ cm}^2}$.", "16", False),
        ("The area is $6 \\times 8 = \\boxed{48\\ \\mathrm{cm}^2}$.", "48", True),
        (
            "Half of base times height: $\\frac{1}{2} \\cdot 12 \\cdot 8 = \\boxed{48 \\text{ square units}}$.",
            "48",
            True,
        ),
        ("Each of the 3 baskets holds 2 apples, so there are $\\boxed{\\text{6 apples}}$.", "6", True),
    ],
)
def test_units_are_dropped_with_their_exponent_and_text_boxes_are_read(output, gold, correct):
    """Before: `\\text{cm}^2` left `^2` on the number (48 → 2304, 4 → 16); `\\text{6 apples}` was dropped whole."""
    assert math_equal(extract_answer(output, "boxed"), gold) is correct
    assert numbers_equal(extract_answer(output, "auto"), gold) is correct  # a numeric task's reading agrees


def test_words_are_units_only_in_text_never_in_math_mode():
    assert math_equal(extract_answer("So she has 6 apples.\nThe answer is 6 apples.", "boxed"), "6")
    assert not math_equal("2xy", "2") and not math_equal("2 xy", "2")  # a product of unknowns, not 2 with a unit


CLASS = "In a class of 30 students, 6 are left-handed. What percent of the students are left-handed?"


def test_a_percent_answers_a_bare_gold_when_the_question_asks_what_percent():
    output = "6 of 30 students is $\\frac{6}{30} = \\frac{1}{5}$, which is $\\boxed{20\\%}$."
    assert asks_percent(CLASS) and math_equal(extract_answer(output, "boxed"), "20", CLASS)
    assert numbers_equal(extract_answer("6/30 = 0.2, so 20% of them.\n#### 20%", "auto"), "20", percent_question=True)
    assert numbers_equal("20", "20", percent_question=True)
    assert not math_equal("0.2", "20", CLASS)  # a fraction of 1 is not the percent asked for
    count = "In a class of 30 students, 20% are left-handed. How many students are left-handed?"
    assert not asks_percent(count) and not math_equal("20\\%", "20", count)  # 20% is 0.2, never 20


@pytest.mark.parametrize("method", ["auto", "last_number", "boxed"])
def test_one_extraction_serves_both_protocols(method):
    output = "The average is $\\frac{19}{3} \\approx 6.33$.\n\nTherefore, the average is \\(\\boxed{6.33}\\)"
    assert extract_answer(output, method) == "6.33"


@pytest.mark.parametrize(
    "written,correct",
    [
        ("0.0633663366336634", True),  # 16 places, correctly rounded
        ("0.063366336633663367", True),  # a double printed to 17 significant digits: its last digit is noise
        ("0.0634", True),
        ("6.34\\%", True),
        ("0.0635", False),  # wrong at its shown precision
        ("0.0633663366336635", False),
        ("0.06", False),  # one significant digit says too little
        ("0.063", True),
    ],
)
def test_a_decimal_stands_for_a_non_terminating_gold_at_its_shown_precision(written, correct):
    output = f"The probability is $\\frac{{32}}{{505}}$, or about $\\boxed{{{written}}}$."
    assert math_equal(extract_answer(output, "boxed"), "\\frac{32}{505}") is correct
    assert numbers_equal(written, "32/505") is correct
