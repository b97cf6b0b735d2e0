from fractions import Fraction

import pytest

from minimath.data.synth.expression import (
    ExpressionError,
    evaluate,
    parse_equation,
    parse_expression,
    render,
    worked_steps,
)

VALUES = {
    "x=120*80%*15%": Fraction(72, 5),
    "x=(11-1)*2": 20,
    "x=1-((2)/(5))-((1)/(3))": Fraction(4, 15),
    "x=5((7)/(10))+3": Fraction(87, 10),
    "x=20/(1-25%)": Fraction(80, 3),
    "x=3.14*2^2": Fraction(1256, 100),
    "x=-(3-5)*2": 4,
    "x=2^3^2": 512,
    "x=(3+4)/(7-2)": Fraction(7, 5),
    "x=10-2-3": 5,
    "x=2*3+4*5": 26,
    "x=2^-1": Fraction(1, 2),
    "X = 6 ÷ 3 × 2": 4,
    "x=（1+2）*3": 9,
}


@pytest.mark.parametrize("equation,value", VALUES.items())
def test_evaluate(equation, value):
    assert evaluate(parse_equation(equation)) == value


@pytest.mark.parametrize("equation", VALUES)
def test_render_round_trips(equation):
    expr = parse_equation(equation)
    rendered = render(expr).replace("×", "*").replace("÷", "/")
    assert evaluate(parse_expression(rendered)) == evaluate(expr)


@pytest.mark.parametrize(
    "bad",
    [
        "x=",
        "x=1+",
        "x=(1+2",
        "x=1+2)",
        "y=3",
        "x=2***3",
        "x=import os",
        "x=1/0",
        "x=__import__('os')",
        "x=2^100",
        "x=3%%*(1",
        "x=1=2",
    ],
)
def test_rejects_without_evaluating_code(bad):
    with pytest.raises(ExpressionError):
        evaluate(parse_equation(bad))


def test_worked_steps_are_innermost_first_and_exact():
    steps, value = worked_steps(parse_equation("x=120*80%*15%"))
    assert [(s.expression, s.result) for s in steps] == [("120 × 80%", 96), ("96 × 15%", Fraction(72, 5))]
    assert value == Fraction(72, 5)
    steps, _ = worked_steps(parse_equation("x=1-((2)/(5))"))
    assert [s.expression for s in steps] == ["1 - 2/5"]  # 2/5 is a number, not a division to explain


@pytest.mark.parametrize(
    "equation,value",
    [
        ("x=3.14*[(3+2)^2-3^2]", Fraction(1256, 25)),  # Math23k's brackets
        ("x=3.14*(18.84/3.14)**2/2", Fraction(1413, 25)),  # Ape210k's power
        ("x=2.75-1(5/6)+3(1/4)-2(1/6)", Fraction(2)),  # Ape210k's mixed numbers
        ("x=(2950+25-+(1998-1997))*25", Fraction(74350)),
        ("x=（12+8）×5÷2", Fraction(50)),  # full-width brackets and the school signs
    ],
)
def test_reads_the_datasets_equation_forms(equation, value):
    assert evaluate(parse_equation(equation)) == value
