from fractions import Fraction

import pytest

from minimath.numbers import agrees_with_answer, format_number, parse_number

PARSED = {
    "880": Fraction(880),
    "-3": Fraction(-3),
    "14.4": Fraction(72, 5),
    "35%": Fraction(7, 20),
    "12.5%": Fraction(1, 8),
    "1/3": Fraction(1, 3),
    "(1/3)": Fraction(1, 3),
    "((2)/(3))": Fraction(2, 3),
    "5((7)/(10))": Fraction(57, 10),
    "5(7/10)": Fraction(57, 10),
    "-2((1)/(2))": Fraction(-5, 2),
    "1,200": Fraction(1200),
    " 7 ": Fraction(7),
}


@pytest.mark.parametrize("text,value", PARSED.items())
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1+2", "3/0", "((1)/(0))", "x=3", "2^3"])
def test_parse_number_rejects(text):
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize(
    "value,text",
    [
        (Fraction(880), "880"),
        (Fraction(72, 5), "14.4"),
        (Fraction(-1, 4), "-0.25"),
        (Fraction(1, 3), "1/3"),
        (Fraction(1, 2**30), "1/1073741824"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


def test_rounded_answers_agree_only_within_their_decimals():
    assert agrees_with_answer(Fraction(80, 3), "26.67")
    assert not agrees_with_answer(Fraction(80, 3), "26.6")
    assert not agrees_with_answer(Fraction(80, 3), "27")
    assert agrees_with_answer(Fraction(1, 3), "33.33%")
    assert agrees_with_answer(Fraction(2, 3), "((2)/(3))")
