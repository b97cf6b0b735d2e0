import pytest

from minimath.eval.answers import extract_answer, math_equal
from minimath.eval.forms import form_ok

FRACTION = (
    "A bag has 4 red marbles, 5 white marbles, and 6 blue marbles. Three marbles are drawn from the bag (without "
    "replacement). What is the probability that they are all the same color? Express your answer as a common fraction."
)
SHOTS = (
    "Alice, Bob and Carol each shoot at a target once. They hit it with probabilities $\\frac{2}{5}$, $\\frac{3}{5}$ "
    "and $\\frac{4}{5}$. What is the probability that all three hit the target? Express your answer as a common "
    "fraction."
)
RATIONALIZE = "Rationalize the denominator: $\\frac{2}{\\sqrt{6}}$. Express your answer in simplest form."
DECIMAL = "What is $\\frac{5}{8}$ of $4$? Express your answer as a decimal."
PLANE = (
    "Find the equation of the plane containing the points $(-3,4,-2),$ $(1,4,0),$ and $(3,2,-1).$  Enter your "
    "answer in the form\n\\[Ax + By + Cz + D = 0,\\]where $A,$ $B,$ $C,$ $D$ are integers such that $A > 0$ and "
    "$\\gcd(|A|,|B|,|C|,|D|) = 1.$"
)


@pytest.mark.parametrize(
    "question,gold,output,correct,form",
    [
        (
            FRACTION,
            "\\frac{34}{455}",
            "There are $\\binom{15}{3} = 455$ ways to draw. All red: $\\binom{4}{3} = 4$, all white: 10, all blue: "
            "20, so the probability is $\\boxed{\\frac{34}{455}}$.",
            True,
            True,
        ),
        (
            SHOTS,
            "\\frac{24}{125}",
            "Alice and Bob both hit with probability $\\frac{2}{5} \\cdot \\frac{3}{5} = \\frac{6}{25}$, and Carol "
            "with $\\frac{12}{15}$, so $\\frac{6}{25} \\cdot \\frac{12}{15} = \\frac{72}{375}$.\nFinal Answer: "
            "The final answer is $\\frac{72}{375}$. I hope it is correct.",
            True,  # the value is right
            False,  # 72/375 is not reduced
        ),
        (SHOTS, "\\frac{24}{125}", "$0.4 \\cdot 0.6 \\cdot 0.8 = \\boxed{0.192}$.", True, False),
        (SHOTS, "\\frac{24}{125}", "So the probability is $\\boxed{-\\frac{24}{125}}$.", False, True),
        (
            RATIONALIZE,
            "\\frac{\\sqrt{6}}{3}",
            "Multiply top and bottom by $\\sqrt{6}$: $\\frac{2\\sqrt{6}}{6} = \\boxed{\\frac{\\sqrt{6}}{3}}$.",
            True,
            True,
        ),
        (RATIONALIZE, "\\frac{\\sqrt{6}}{3}", "Simplifying, $\\boxed{\\frac{1}{\\frac{\\sqrt{6}}{2}}}$", True, False),
        (RATIONALIZE, "\\frac{\\sqrt{6}}{3}", "The answer is $\\boxed{2/\\sqrt{6}}$.", True, False),
        (DECIMAL, "2.5", "$\\frac{5}{8} \\cdot 4 = \\frac{20}{8} = \\boxed{2.5}$.", True, True),
        (DECIMAL, "2.5", "$\\frac{5}{8} \\cdot 4 = \\boxed{\\frac{5}{2}}$.", True, False),
        (PLANE, "x + 2y - 2z - 1 = 0", "The normal is $(1, 2, -2)$, so $\\boxed{x + 2y - 2z - 1 = 0}$.", True, True),
        (
            PLANE,
            "x + 2y - 2z - 1 = 0",
            "The normal is $(-1, -2, 2)$, so the plane is $\\boxed{-x - 2y + 2z + 1 = 0}$.",
            True,  # the same plane
            False,  # but A < 0
        ),
        ("What is $2 + 2$?", "4", "$2 + 2 = \\boxed{4}$", True, None),  # no form asked: no verdict
    ],
)
def test_form_is_judged_apart_from_the_value(question, gold, output, correct, form):
    answer = extract_answer(output, "boxed")
    assert math_equal(answer, gold, question) is correct
    assert form_ok(question, answer) is form


def test_no_answer_has_no_form_verdict():
    assert form_ok(FRACTION, None) is None
