"""A safe parser for the equations of Math23k/Ape210k (`x=120*80%*15%`), exact evaluation, and worked steps.

Grammar (precedence low → high): `+ -`, `* /`, unary `-`, `^` or `**` (right-associative), postfix `%`, atoms.
An atom is a number, an expression in `()`, `[]` or `{}`, or a mixed number written `5((7)/(10))` or `5(7/10)`
(= 5 + 7/10). Text is read through `numbers.normalize_math_text`, so LaTeX fractions, `3又1/2` and full-width
characters are numbers too. Nothing is ever passed to `eval`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from minimath.numbers import format_number, normalize_math_text

# Math23k writes the fraction 2/3 as `((2)/(3))`: it is one number, not a division step to explain.
_FRACTION_LITERAL = re.compile(r"\(\((\d+)\)/\((\d+)\)\)")
_TOKEN = re.compile(r"\s*(?:⟦(\d+/\d+)⟧|(\d+(?:\.\d+)?)|(.))")
SYMBOLS = {"+": "+", "-": "-", "*": "×", "/": "÷", "^": "^"}
MAX_EXPONENT = 64


@dataclass(frozen=True)
class Num:
    value: Fraction
    text: str  # as written in the equation (keeps `80%`, `2/3`)


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg:
    operand: Expr


Expr = Num | BinOp | Neg


class ExpressionError(ValueError):
    pass


def _tokenize(text: str) -> list[str]:
    """Numbers (`12`, `3.5`), fraction literals (`2/3`), and the operator characters."""
    tokens, pos = [], 0
    text = normalize_math_text(text).replace("×", "*").replace("÷", "/").replace("**", "^").strip()
    text = _FRACTION_LITERAL.sub(r"⟦\1/\2⟧", text)
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m[3] is not None and m[3] not in "+-*/^%()" and not m[3].isspace():
            raise ExpressionError(f"unexpected character {m[3]!r} in {text!r}")
        tokens.append(m[1] or m[2] or m[3])
        pos = m.end()
    return [t for t in tokens if not t.isspace()]


def _literal(token: str) -> Num:
    if "/" in token:
        num, den = token.split("/")
        if int(den) == 0:
            raise ExpressionError(f"zero denominator in {token}")
        return Num(Fraction(int(num), int(den)), token)
    return Num(Fraction(token), token)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ExpressionError(f"expected {expected or 'more input'} in {self.text!r}")
        self.pos += 1
        return tok

    def parse(self) -> Expr:
        expr = self.sum()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()!r} in {self.text!r}")
        return expr

    def sum(self) -> Expr:
        expr = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            expr = BinOp(op, expr, self.product())
        return expr

    def product(self) -> Expr:
        expr = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            expr = BinOp(op, expr, self.unary())
        return expr

    def unary(self) -> Expr:
        if self.peek() == "-":
            self.take()
            return Neg(self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Expr:
        base = self.postfix()
        if self.peek() == "^":
            self.take()
            return BinOp("^", base, self.unary())
        return base

    def postfix(self) -> Expr:
        expr = self.atom()
        while self.peek() == "%":
            self.take()
            if not isinstance(expr, Num):
                raise ExpressionError(f"% must follow a number in {self.text!r}")
            expr = Num(expr.value / 100, expr.text + "%")
        return expr

    def atom(self) -> Expr:
        tok = self.peek()
        if tok == "(":
            self.take()
            inner = self.sum()
            self.take(")")
            return inner
        if tok is not None and tok[0].isdigit():
            number = _literal(self.take())
            nxt = self.peek()
            if nxt is not None and "/" in nxt and nxt[0].isdigit() and "/" not in number.text:
                fraction = _literal(self.take())  # a mixed number: 5((7)/(10)) = 5 + 7/10
                value = number.value + fraction.value
                return Num(value, format_number(value))
            return number
        raise ExpressionError(f"expected a number or '(' in {self.text!r}")


def parse_expression(text: str) -> Expr:
    return _Parser(text).parse()


def numeric_value(text: str) -> Fraction:
    """The exact value of a number or arithmetic expression in any form the grammar reads (`14.4`, `35%`,
    `((2)/(3))`, `4(5/11)`, `\\frac{72}{5}`, `(45+39)/(45-39)`); ExpressionError when it is neither."""
    return evaluate(parse_expression(text))


def parse_equation(text: str) -> Expr:
    """`x=...` (Math23k's form) or a bare expression."""
    s = text.strip()
    if "=" in s:
        lhs, _, rhs = s.partition("=")
        if lhs.strip().lower() != "x" or "=" in rhs:
            raise ExpressionError(f"expected 'x=<expression>', got {text!r}")
        s = rhs
    return parse_expression(s)


def apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise ExpressionError("division by zero")
        return a / b
    if b.denominator != 1 or abs(b) > MAX_EXPONENT:
        raise ExpressionError(f"unsupported exponent {b}")
    if a == 0 and b < 0:
        raise ExpressionError("zero to a negative power")
    return a ** int(b)


def evaluate(expr: Expr) -> Fraction:
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Neg):
        return -evaluate(expr.operand)
    return apply(expr.op, evaluate(expr.left), evaluate(expr.right))


def render(expr: Expr, parent_prec: int = 0, right_side: bool = False) -> str:
    """The expression with × and ÷, minimal parentheses."""
    prec = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}
    if isinstance(expr, Num):
        # 7/5 and -2 are single numbers: bracket them where an operator could split them (2 ÷ (7/5), 3 - (-2))
        fraction = "/" in expr.text and parent_prec >= 2
        negative = expr.text.startswith("-") and (parent_prec >= 2 or right_side)
        return f"({expr.text})" if fraction or negative else expr.text
    if isinstance(expr, Neg):
        inner = render(expr.operand, 3)
        return f"-{inner}" if parent_prec < 3 else f"(-{inner})"
    p = prec[expr.op]
    text = f"{render(expr.left, p)} {SYMBOLS[expr.op]} {render(expr.right, p, right_side=True)}"
    if expr.op == "^":
        text = f"{render(expr.left, p + 1)}^{render(expr.right, p)}"
    needs = p < parent_prec or (p == parent_prec and right_side and expr.op not in ("^",))
    return f"({text})" if needs else text


@dataclass(frozen=True)
class Step:
    expression: str  # e.g. "120 × 80%"
    result: Fraction


def worked_steps(expr: Expr) -> tuple[list[Step], Fraction]:
    """One step per operation, innermost first, left to right, as a person would write them."""
    steps: list[Step] = []

    def reduce(node: Expr) -> Num:
        if isinstance(node, Num):
            return node
        if isinstance(node, Neg):
            inner = reduce(node.operand)
            if not isinstance(node.operand, Num):  # negating a computed value is a step of its own
                steps.append(Step(f"-({inner.text})", -inner.value))
            return Num(-inner.value, format_number(-inner.value))
        left, right = reduce(node.left), reduce(node.right)
        value = apply(node.op, left.value, right.value)
        steps.append(Step(render(BinOp(node.op, left, right)), value))
        return Num(value, format_number(value))

    return steps, reduce(expr).value
