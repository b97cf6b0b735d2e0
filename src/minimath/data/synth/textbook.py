"""Short textbook-style explanations of elementary math concepts, each with a freshly computed example.

The embedded default's "math text" (the report's stage 2 adds cleaned math text such as MathPile).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd

from minimath.data.synth.base import DocumentGenerator, check_subset

LANGUAGES = ("en", "zh")


def _fractions(rng: random.Random, lang: str) -> str:
    b = rng.randint(3, 12)
    a = rng.randint(1, b - 1)
    k = rng.randint(2, 5)
    g = gcd(a, b)
    if lang == "zh":
        return (
            f"分数表示把一个整体平均分成若干份，取其中的几份。分数 {a}/{b} 表示把整体平均分成 {b} 份，取其中的 {a} 份。"
            f"分子和分母同时乘以同一个不为零的数，分数的大小不变，例如 {a}/{b} = {a * k}/{b * k}。"
            + (
                f"{a}/{b} 的分子和分母的最大公因数是 {g}，约分后得 {a // g}/{b // g}。"
                if g > 1
                else f"{a} 和 {b} 的最大公因数是 1，所以 {a}/{b} 已经是最简分数。"
            )
        )
    return (
        f"A fraction names equal parts of a whole. The fraction {a}/{b} means the whole is split into {b} equal "
        f"parts and we take {a} of them. Multiplying the numerator and the denominator by the same non-zero "
        f"number does not change a fraction: {a}/{b} = {a * k}/{b * k}. "
        + (
            f"The greatest common factor of {a} and {b} is {g}, so {a}/{b} simplifies to {a // g}/{b // g}."
            if g > 1
            else f"Since {a} and {b} share no factor other than 1, {a}/{b} is already in lowest terms."
        )
    )


def _percentages(rng: random.Random, lang: str) -> str:
    p, n = 5 * rng.randint(1, 19), 20 * rng.randint(1, 25)
    if lang == "zh":
        return (
            f"百分数表示一个数是另一个数的百分之几，{p}% 就是 {p}/100。求一个数的百分之几，用这个数乘以百分数："
            f"{n} 的 {p}% 是 {n} × {p}/100 = {n * p // 100}。"
        )
    return (
        f"A percentage is a number out of 100, so {p}% means {p}/100. To find a percentage of a quantity, "
        f"multiply: {p}% of {n} is {n} × {p}/100 = {n * p // 100}."
    )


def _order_of_operations(rng: random.Random, lang: str) -> str:
    a, b, c = rng.randint(2, 20), rng.randint(2, 9), rng.randint(2, 9)
    if lang == "zh":
        return (
            f"四则混合运算的顺序是：先算括号里的，再算乘除，最后算加减。例如 {a} + {b} × {c} = {a} + {b * c} = {a + b * c}，"
            f"而 ({a} + {b}) × {c} = {a + b} × {c} = {(a + b) * c}。"
        )
    return (
        f"In a calculation with several operations we work inside brackets first, then multiply and divide, "
        f"then add and subtract. So {a} + {b} × {c} = {a} + {b * c} = {a + b * c}, "
        f"but ({a} + {b}) × {c} = {a + b} × {c} = {(a + b) * c}."
    )


def _rectangle(rng: random.Random, lang: str) -> str:
    w, h = rng.randint(2, 30), rng.randint(2, 30)
    if lang == "zh":
        return (
            f"长方形的周长 = (长 + 宽) × 2，面积 = 长 × 宽。一个长 {w} 厘米、宽 {h} 厘米的长方形，"
            f"周长是 ({w} + {h}) × 2 = {(w + h) * 2} 厘米，面积是 {w} × {h} = {w * h} 平方厘米。"
        )
    return (
        f"The perimeter of a rectangle is 2 × (length + width) and its area is length × width. "
        f"A rectangle {w} cm long and {h} cm wide has perimeter 2 × ({w} + {h}) = {2 * (w + h)} cm "
        f"and area {w} × {h} = {w * h} square cm."
    )


def _primes(rng: random.Random, lang: str) -> str:
    n = rng.randint(12, 99)
    factors, m, p = [], n, 2
    while m > 1:
        while m % p == 0:
            factors.append(p)
            m //= p
        p += 1
    product = " × ".join(map(str, factors))
    if lang == "zh":
        kind = "质数" if len(factors) == 1 else "合数"
        return (
            f"一个大于 1 的整数，如果只有 1 和它本身两个因数，就叫做质数；否则叫做合数。"
            f"{n} = {product}，所以 {n} 是{kind}。"
        )
    kind = "prime" if len(factors) == 1 else "composite"
    return (
        f"A whole number greater than 1 is prime if its only factors are 1 and itself; otherwise it is "
        f"composite. Since {n} = {product}, {n} is {kind}."
    )


def _equations(rng: random.Random, lang: str) -> str:
    a, x, b = rng.randint(2, 9), rng.randint(1, 15), rng.randint(1, 30)
    if lang == "zh":
        return (
            f"含有未知数的等式叫做方程。解方程时，等式两边同时加、减、乘或除以同一个数（除数不为零），等式仍然成立。"
            f"例如 {a}x + {b} = {a * x + b}，两边同时减去 {b} 得 {a}x = {a * x}，再同时除以 {a} 得 x = {x}。"
        )
    return (
        f"An equation is a statement that two expressions are equal. Adding, subtracting, multiplying or dividing "
        f"both sides by the same number (never dividing by zero) keeps it true. For {a}x + {b} = {a * x + b}, "
        f"subtract {b} from both sides to get {a}x = {a * x}, then divide by {a} to get x = {x}."
    )


CONCEPTS: dict[str, Callable[[random.Random, str], str]] = {
    "fractions": _fractions,
    "percentages": _percentages,
    "order_of_operations": _order_of_operations,
    "rectangle": _rectangle,
    "primes": _primes,
    "equations": _equations,
}


@dataclass
class TextbookSource(DocumentGenerator):
    languages: tuple[str, ...] = LANGUAGES
    paragraphs_per_doc: int = 3

    def __post_init__(self):
        self.languages = check_subset("languages", self.languages, LANGUAGES)

    def document(self, rng: random.Random) -> str:
        lang = rng.choice(self.languages)
        return "\n\n".join(rng.choice(list(CONCEPTS.values()))(rng, lang) for _ in range(self.paragraphs_per_doc))
