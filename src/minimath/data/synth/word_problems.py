"""Templated math word problems with Math23k-style equations, in English and Chinese.

Each problem is a record like Math23k's (`original_text`, `equation`, `ans`), so the embedded default feeds the
same chain-of-thought builder (`cot.build_cot`) that real Math23k/Ape210k records go through. Numbers are drawn
so that answers are clean (integers or short decimals).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from minimath.data.synth.base import SPLITS, DocumentGenerator, check_subset, draw_in_split
from minimath.data.synth.cot import build_cot
from minimath.data.synth.expression import evaluate, parse_equation
from minimath.numbers import format_number

LANGUAGES = ("en", "zh")
NAMES = {"en": ["Tom", "Lily", "Sam", "Mia", "Ben", "Ana"], "zh": ["小明", "小红", "小刚", "小丽", "王老师", "李叔叔"]}
ITEMS = {"en": ["apples", "pencils", "books", "stickers", "marbles"], "zh": ["苹果", "铅笔", "书", "贴纸", "弹珠"]}


def _remaining(rng, lang):
    a = rng.randint(20, 200)
    b = rng.randint(1, a - 1)
    name, item = rng.choice(NAMES[lang]), rng.choice(ITEMS[lang])
    text = (
        f"{name}有{a}个{item}，送给同学{b}个，还剩多少个？"
        if lang == "zh"
        else f"{name} has {a} {item} and gives {b} of them to friends. How many {item} are left?"
    )
    return text, f"x={a}-{b}"


def _total_price(rng, lang):
    price, n = rng.randint(2, 50), rng.randint(2, 30)
    item = rng.choice(ITEMS[lang])
    text = (
        f"每个{item}{price}元，买{n}个需要多少元？"
        if lang == "zh"
        else f"One of the {item} costs {price} dollars. How much do {n} of them cost?"
    )
    return text, f"x={price}*{n}"


def _sharing(rng, lang):
    n, each = rng.randint(2, 12), rng.randint(2, 25)
    item = rng.choice(ITEMS[lang])
    text = (
        f"把{n * each}个{item}平均分给{n}个小朋友，每人分到几个？"
        if lang == "zh"
        else f"{n * each} {item} are shared equally among {n} children. How many does each child get?"
    )
    return text, f"x={n * each}/{n}"


def _percent_of(rng, lang):
    n, p = 20 * rng.randint(2, 60), 5 * rng.randint(1, 19)
    text = (
        f"某校有学生{n}人，其中女生占{p}%，女生有多少人？"
        if lang == "zh"
        else f"A school has {n} students and {p}% of them are girls. How many girls are there?"
    )
    return text, f"x={n}*{p}%"


def _fraction_left(rng, lang):
    b = rng.randint(2, 9)
    a = rng.randint(1, b - 1)
    length = b * rng.randint(2, 30)
    text = (
        f"一根绳子长{length}米，用去了它的{a}/{b}，还剩多少米？"
        if lang == "zh"
        else f"A rope is {length} m long. {a}/{b} of it is used. How many meters are left?"
    )
    return text, f"x={length}*(1-(({a})/({b})))"


def _distance(rng, lang):
    v, t = rng.randint(3, 120), rng.randint(2, 9)
    if rng.random() < 0.5:
        text = (
            f"一辆车每小时行{v}千米，{t}小时行多少千米？"
            if lang == "zh"
            else f"A car travels {v} km per hour. How far does it go in {t} hours?"
        )
        return text, f"x={v}*{t}"
    text = (
        f"两地相距{v * t}千米，一辆车每小时行{v}千米，几小时到达？"
        if lang == "zh"
        else f"Two towns are {v * t} km apart. A car travels {v} km per hour. How many hours does the trip take?"
    )
    return text, f"x={v * t}/{v}"


def _average(rng, lang):
    s1, s2 = rng.randint(60, 100), rng.randint(60, 100)
    s3 = rng.choice([v for v in range(60, 101) if (s1 + s2 + v) % 3 == 0])  # a whole-number average
    text = (
        f"小明三次测验的成绩分别是{s1}分、{s2}分和{s3}分，平均分是多少？"
        if lang == "zh"
        else f"Sam scored {s1}, {s2} and {s3} on three tests. What is his average score?"
    )
    return text, f"x=({s1}+{s2}+{s3})/3"


def _discount(rng, lang):
    price, d = 20 * rng.randint(2, 50), 5 * rng.randint(1, 12)
    text = (
        f"一件衣服原价{price}元，打折后便宜了{d}%，现价多少元？"
        if lang == "zh"
        else f"A coat costs {price} dollars. The price is reduced by {d}%. What is the new price?"
    )
    return text, f"x={price}*(1-{d}%)"


def _reverse_percent(rng, lang):
    p = 5 * rng.randint(1, 16)
    left = (100 - p) * rng.randint(1, 6)
    text = (
        f"小红用去了她的钱的{p}%，还剩{left}元，她原来有多少元？"
        if lang == "zh"
        else f"Lily spent {p}% of her money and has {left} dollars left. How much money did she have at first?"
    )
    return text, f"x={left}/(1-{p}%)"


def _boxes(rng, lang):
    per_box, boxes = rng.randint(6, 24), rng.randint(2, 15)
    used = rng.randint(1, per_box * boxes - 1)
    text = (
        f"每盒铅笔有{per_box}支，买了{boxes}盒，用去{used}支，还剩多少支？"
        if lang == "zh"
        else f"A box holds {per_box} pencils. A class buys {boxes} boxes and uses {used} pencils. How many are left?"
    )
    return text, f"x={per_box}*{boxes}-{used}"


TEMPLATES: dict[str, Callable[[random.Random, str], tuple[str, str]]] = {
    "remaining": _remaining,
    "total_price": _total_price,
    "sharing": _sharing,
    "percent_of": _percent_of,
    "fraction_left": _fraction_left,
    "distance": _distance,
    "average": _average,
    "discount": _discount,
    "reverse_percent": _reverse_percent,
    "boxes": _boxes,
}


def math23k_answer(equation: str) -> str:
    """The `ans` field as Math23k writes it: integers and decimals plainly, other fractions as ((a)/(b))."""
    value = evaluate(parse_equation(equation))
    text = format_number(value)
    return f"(({value.numerator})/({value.denominator}))" if "/" in text else text


@dataclass
class WordProblemSource(DocumentGenerator):
    languages: tuple[str, ...] = LANGUAGES
    templates: tuple[str, ...] = tuple(TEMPLATES)
    problems_per_doc: int = 2
    with_solution: bool = True  # False: question only (e.g. for held-out evaluation prompts)
    split: str = "train"  # train | heldout (a disjoint 2% of problems, for evaluation)

    def __post_init__(self):
        check_subset("split", (self.split,), SPLITS)
        self.languages = check_subset("languages", self.languages, LANGUAGES)
        self.templates = check_subset("templates", self.templates, TEMPLATES)

    def record(self, rng: random.Random, index: int = 0) -> dict:
        """One Math23k-format record from this source's split."""
        lang = rng.choice(self.languages)
        text, equation = draw_in_split(
            lambda: TEMPLATES[rng.choice(self.templates)](rng, lang), lambda p: p[0], self.split
        )
        return {
            "id": str(index),
            "original_text": text,
            "segmented_text": text,
            "equation": equation,
            "ans": math23k_answer(equation),
        }

    def records(self, rng: random.Random) -> Iterator[dict]:
        index = 0
        while True:
            yield self.record(rng, index)
            index += 1

    def document(self, rng: random.Random) -> str:
        problems = [self.record(rng) for _ in range(self.problems_per_doc)]
        if not self.with_solution:
            return "\n\n".join(p["original_text"] for p in problems)
        return "\n\n".join(build_cot(p["original_text"], p["equation"], p["ans"]) for p in problems)
