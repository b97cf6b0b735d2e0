import random
import re

import pytest

from minimath.data.synth.arithmetic import ArithmeticSource

LINE = re.compile(r"^(\d+) ([+\-×÷]) (\d+) = (-?\d+)$")


def check_line(line: str) -> None:
    a, op, b, answer = LINE.match(line).groups()
    a, b, answer = int(a), int(b), int(answer)
    if op == "+":
        assert a + b == answer
    elif op == "-":
        assert a - b == answer
    elif op == "×":
        assert a * b == answer
    else:
        assert b != 0 and b * answer == a


def test_every_generated_line_is_correct():
    source = ArithmeticSource(max_digits=3)
    docs = source.documents(random.Random(0))
    for _ in range(500):
        for line in next(docs).split("\n"):
            check_line(line)


def test_deterministic_for_a_seed_and_covers_all_operators():
    a = [ArithmeticSource().document(random.Random(7)) for _ in range(2)]
    assert a[0] == a[1]
    text = "\n".join(ArithmeticSource().document(random.Random(s)) for s in range(50))
    assert all(sym in text for sym in "+-×÷")


def test_no_negative_results_unless_allowed():
    src = ArithmeticSource(operators=("-",), lines_per_doc=50)
    assert "= -" not in src.document(random.Random(3))


def test_bad_options():
    with pytest.raises(ValueError, match="operators"):
        ArithmeticSource(operators=("^",))
    with pytest.raises(ValueError, match="at least 1"):
        ArithmeticSource(max_digits=0)
