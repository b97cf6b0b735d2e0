"""The `oracle` teacher: a programmatic stand-in for GPT-4, so that the synthesis pipeline runs, and is tested, on
a CPU without an API.

It reads the seed text back out of the request (`prompts.seed_text`), and writes a correct problem at the
prompt's education stage, in the prompt's language and format, using the text's numbers where they fit (a
`random.Random` whose `randint` prefers them) and its topic (percentages, fractions, equations, …) to choose the
kind of problem. The problem is an exact expression (`minimath.data.synth.expression`) solved one operation per
step, so every `a op b = c` line is true; a tool reply's program is built from the same expression with integers
and `Fraction`, and its printed output is computed here, never by running it. Grade- and middle-school problems
come from the project's own generators (`word_problems`, `arithmetic`), drawn from their training split, so the
oracle never writes a held-out evaluation problem. A text without numbers still gets a problem, drawn from the
request's seed alone.

Deterministic per request: the generator is seeded with the request's cache key (prompt, sampling, sample index).
Token counts are estimates (characters / 4); there is no tokenizer behind them.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from omegaconf import DictConfig

from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.data.synth.base import draw_in_split
from minimath.data.synth.expression import Expr, Neg, Num, parse_equation, parse_expression, render, worked_steps
from minimath.data.synth.word_problems import WordProblemSource
from minimath.numbers import format_number
from minimath.synthesis.prompts import PromptSet, PromptTemplate, seed_text
from minimath.synthesis.records import Completion, Request

MODEL = "oracle-v1 (programmatic stand-in for GPT-4)"
CHARS_PER_TOKEN = 4  # the token-count estimate
TEXT_NUMBER_SHARE = 0.7  # how often a number in range is taken from the seed text rather than drawn


class _TextRandom(random.Random):
    """A `random.Random` whose `randint` picks a number of the seed text when one lies in the range (most of the
    time), so the project's generators write problems about the text's quantities."""

    def __init__(self, seed: str, numbers: list[int]):
        super().__init__(seed)
        self.numbers = numbers

    def randint(self, a: int, b: int) -> int:
        fits = [n for n in self.numbers if a <= n <= b]
        if fits and self.random() < TEXT_NUMBER_SHARE:
            return self.choice(fits)
        return super().randint(a, b)


@dataclass(frozen=True)
class Problem:
    question: str
    intro: str  # the approach, one sentence
    expr: Expr  # the computation; its value is the answer
    name: str = "answer"  # the tool program's variable


Builder = Callable[[random.Random, bool], Problem]  # (rng, zh) → problem


def _say(zh: bool, en: str, zh_text: str) -> str:
    return zh_text if zh else en


def _word_problem(kind: str) -> Builder:
    def build(rng: random.Random, zh: bool) -> Problem:
        source = WordProblemSource(languages=("zh" if zh else "en",), templates=(kind,))
        record = source.record(rng)
        expr = parse_equation(record["equation"])
        return Problem(
            record["original_text"], _say(zh, f"Let x = {render(expr)}.", f"列式：x = {render(expr)}。"), expr
        )

    return build


def _fraction_arithmetic(rng: random.Random, zh: bool) -> Problem:
    question, *_ = ArithmeticSource(kinds=("fraction",)).problem(rng)
    return Problem(
        _say(
            zh,
            f"Calculate {question} and give the result as a fraction in lowest terms.",
            f"计算 {question}，结果写成最简分数。",
        ),
        _say(zh, "Work out the expression one operation at a time.", "按运算顺序逐步计算。"),
        parse_expression(question),
        "result",
    )


def _linear_equation(rng: random.Random, zh: bool) -> Problem:
    def draw():
        a, x, b = rng.randint(2, 9), rng.randint(1, 20), rng.randint(1, 40)
        return a, b, a * x + b

    a, b, c = draw_in_split(draw, lambda p: f"{p[0]}x + {p[1]} = {p[2]}", "train")  # the equations source's key
    question = rng.choice(
        [
            _say(zh, f"Solve for x: {a}x + {b} = {c}.", f"解方程：{a}x + {b} = {c}。"),
            _say(
                zh,
                f"Mia thinks of a number, multiplies it by {a} and adds {b}. The result is {c}. What is her number?",
                f"小丽想了一个数，把它乘以 {a} 再加上 {b}，结果是 {c}。她想的数是多少？",
            ),
        ]
    )
    return Problem(
        question,
        _say(zh, f"Subtract {b} from both sides, then divide by {a}.", f"等式两边同时减去 {b}，再同时除以 {a}。"),
        parse_expression(f"({c}-{b})/{a}"),
        "x",
    )


def _ratio(rng: random.Random, zh: bool) -> Problem:
    p, q = rng.sample(range(1, 10), 2)
    total = (p + q) * rng.randint(2, 40)
    return Problem(
        _say(
            zh,
            f"{total} dollars are shared between Ana and Ben in the ratio {p}:{q}. How many dollars does Ben get?",
            f"把 {total} 元按 {p}:{q} 分给小红和小刚，小刚分得多少元？",
        ),
        _say(zh, "One share is the total divided by the number of shares.", "先求一份是多少，再乘以份数。"),
        parse_expression(f"{total}/({p}+{q})*{q}"),
        "share",
    )


def _arithmetic_series(rng: random.Random, zh: bool) -> Problem:
    a, d, n = rng.randint(1, 20), rng.randint(2, 9), rng.randint(5, 20)
    return Problem(
        _say(
            zh,
            f"An arithmetic sequence has first term {a} and common difference {d}. Find the sum of "
            f"its first {n} terms.",
            f"等差数列的首项是 {a}，公差是 {d}，求前 {n} 项的和。",
        ),
        _say(zh, "Use S = n × (2a + (n - 1) × d) ÷ 2.", "用求和公式 S = n × (2a + (n - 1) × d) ÷ 2。"),
        parse_expression(f"{n}*(2*{a}+({n}-1)*{d})/2"),
        "total",
    )


def _geometric_term(rng: random.Random, zh: bool) -> Problem:
    a, r, n = rng.randint(1, 9), rng.randint(2, 4), rng.randint(3, 8)
    return Problem(
        _say(
            zh,
            f"A geometric sequence starts with {a} and each term is {r} times the one before. What "
            f"is its term number {n}?",
            f"等比数列的首项是 {a}，公比是 {r}，求第 {n} 项。",
        ),
        _say(zh, "The n-th term is a × r^(n - 1).", "第 n 项等于 a × r^(n - 1)。"),
        parse_expression(f"{a}*{r}^({n}-1)"),
        "term",
    )


def _quadratic_value(rng: random.Random, zh: bool) -> Problem:
    a, b, c, k = rng.randint(1, 6), rng.randint(1, 12), rng.randint(1, 30), rng.randint(2, 9)
    return Problem(
        _say(zh, f"Let f(x) = {a}x^2 + {b}x + {c}. Find f({k}).", f"已知 f(x) = {a}x^2 + {b}x + {c}，求 f({k})。"),
        _say(zh, f"Substitute x = {k}.", f"把 x = {k} 代入。"),
        parse_expression(f"{a}*{k}^2+{b}*{k}+{c}"),
        "value",
    )


def _two_draws(rng: random.Random, zh: bool) -> Problem:
    red, blue = rng.randint(2, 9), rng.randint(2, 9)
    n = red + blue
    return Problem(
        _say(
            zh,
            f"A bag holds {red} red and {blue} blue marbles. Two marbles are drawn without "
            f"replacement. What is the probability that both are red?",
            f"袋中有 {red} 个红球和 {blue} 个蓝球，不放回地摸出两个球，两个都是红球的概率是多少？",
        ),
        _say(
            zh,
            "Multiply the chance of red on the first draw by the chance of red on the second.",
            "第一次摸到红球的概率乘以第二次摸到红球的概率。",
        ),
        parse_expression(f"(({red})/({n}))*(({red - 1})/({n - 1}))"),
        "probability",
    )


def _derivative(rng: random.Random, zh: bool) -> Problem:
    a, b, c, k = rng.randint(1, 5), rng.randint(1, 9), rng.randint(1, 12), rng.randint(1, 6)
    return Problem(
        _say(
            zh, f"Let f(x) = {a}x^3 + {b}x^2 + {c}x. Find f'({k}).", f"设 f(x) = {a}x^3 + {b}x^2 + {c}x，求 f'({k})。"
        ),
        _say(
            zh,
            f"f'(x) = {3 * a}x^2 + {2 * b}x + {c}; substitute x = {k}.",
            f"f'(x) = {3 * a}x^2 + {2 * b}x + {c}，代入 x = {k}。",
        ),
        parse_expression(f"{3 * a}*{k}^2+{2 * b}*{k}+{c}"),
        "slope",
    )


def _integral(rng: random.Random, zh: bool) -> Problem:
    a, b, k = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 6)
    return Problem(
        _say(
            zh,
            f"Evaluate the integral of {a}x^2 + {b}x from x = 0 to x = {k}.",
            f"求 {a}x^2 + {b}x 从 x = 0 到 x = {k} 的定积分。",
        ),
        _say(
            zh,
            f"An antiderivative is {a}x^3/3 + {b}x^2/2; evaluate it at {k} (it is 0 at 0).",
            f"原函数是 {a}x^3/3 + {b}x^2/2，代入上限 {k}（下限 0 处为 0）。",
        ),
        parse_expression(f"{a}*{k}^3/3+{b}*{k}^2/2"),
        "area",
    )


def _determinant(rng: random.Random, zh: bool) -> Problem:
    a, b, c, d = (rng.randint(1, 12) for _ in range(4))
    return Problem(
        _say(
            zh,
            f"Find the determinant of the matrix [[{a}, {b}], [{c}, {d}]].",
            f"求矩阵 [[{a}, {b}], [{c}, {d}]] 的行列式。",
        ),
        _say(zh, "For a 2 × 2 matrix the determinant is ad - bc.", "二阶行列式等于 ad - bc。"),
        parse_expression(f"{a}*{d}-{b}*{c}"),
        "det",
    )


def _expected_roll(rng: random.Random, zh: bool) -> Problem:
    n, k = rng.choice([4, 6, 8, 10, 12, 20]), rng.randint(2, 9)
    return Problem(
        _say(
            zh,
            f"A fair die has faces 1 to {n}. A game pays {k} dollars times the number rolled. What "
            f"is the expected payout?",
            f"一个均匀骰子的面是 1 到 {n}，游戏按掷出的点数乘以 {k} 元付钱。期望收益是多少元？",
        ),
        _say(zh, "The expected roll is (n + 1) ÷ 2.", "掷出点数的期望是 (n + 1) ÷ 2。"),
        parse_expression(f"{k}*({n}+1)/2"),
        "expected",
    )


def _sum_to(rng: random.Random, zh: bool) -> Problem:
    n = rng.randint(10, 100)
    return Problem(
        _say(zh, f"What is 1 + 2 + 3 + ... + {n}?", f"1 + 2 + 3 + … + {n} 等于多少？"),
        _say(zh, "Pair the first and last terms: the sum is n × (n + 1) ÷ 2.", "首尾配对：和等于 n × (n + 1) ÷ 2。"),
        parse_expression(f"{n}*({n}+1)/2"),
        "total",
    )


def _multiples(rng: random.Random, zh: bool) -> Problem:
    k, top = rng.randint(3, 13), rng.randint(50, 500)
    return Problem(
        _say(zh, f"How many multiples of {k} are there from 1 to {top}?", f"从 1 到 {top} 中有多少个 {k} 的倍数？"),
        _say(
            zh,
            f"The largest multiple of {k} not above {top} is {top} - {top % k}.",
            f"不超过 {top} 的最大的 {k} 的倍数是 {top} - {top % k}。",
        ),
        parse_expression(f"({top}-{top % k})/{k}"),
        "count",
    )


def _rectangle_area(rng: random.Random, zh: bool) -> Problem:
    length, width = rng.randint(3, 30), rng.randint(2, 30)
    perimeter = 2 * (length + width)
    return Problem(
        _say(
            zh,
            f"A rectangle has perimeter {perimeter} cm and length {length} cm. What is its area in square cm?",
            f"一个长方形的周长是 {perimeter} 厘米，长是 {length} 厘米，面积是多少平方厘米？",
        ),
        _say(zh, "Half the perimeter is length plus width.", "周长的一半等于长加宽。"),
        parse_expression(f"({perimeter}/2-{length})*{length}"),
        "area",
    )


def _handshakes(rng: random.Random, zh: bool) -> Problem:
    n = rng.randint(5, 40)
    return Problem(
        _say(
            zh,
            f"At a meeting of {n} people everyone shakes hands with everyone else once. How many handshakes are there?",
            f"{n} 个人聚会，每两人握一次手，一共握多少次手？",
        ),
        _say(zh, "Each pair shakes hands once: n × (n - 1) ÷ 2.", "每两人一次：n × (n - 1) ÷ 2。"),
        parse_expression(f"{n}*({n}-1)/2"),
        "handshakes",
    )


def _regular_angle(rng: random.Random, zh: bool) -> Problem:
    n = rng.choice([d for d in range(3, 361) if 360 % d == 0 and d <= 72])
    return Problem(
        _say(
            zh,
            f"What is the measure in degrees of each interior angle of a regular polygon with {n} sides?",
            f"正 {n} 边形的每个内角是多少度？",
        ),
        _say(
            zh,
            "An exterior angle is 360 ÷ n; the interior angle is 180 minus it.",
            "每个外角是 360 ÷ n，内角等于 180 减去外角。",
        ),
        parse_expression(f"180-360/{n}"),
        "angle",
    )


def _consecutive(rng: random.Random, zh: bool) -> Problem:
    k, m = rng.randint(3, 9), rng.randint(1, 60)
    total = k * m + k * (k - 1) // 2
    return Problem(
        _say(
            zh,
            f"The sum of {k} consecutive positive integers is {total}. What is the smallest of them?",
            f"{k} 个连续正整数的和是 {total}，其中最小的数是多少？",
        ),
        _say(
            zh,
            f"With smallest m the sum is {k}m + {k} × ({k} - 1) ÷ 2.",
            f"设最小的数是 m，则和为 {k}m + {k} × ({k} - 1) ÷ 2。",
        ),
        parse_expression(f"({total}-{k}*({k}-1)/2)/{k}"),
        "smallest",
    )


def _geometric_sum(rng: random.Random, zh: bool) -> Problem:
    r, n = rng.randint(2, 5), rng.randint(3, 8)
    return Problem(
        _say(zh, f"Find 1 + {r} + {r}^2 + ... + {r}^{n - 1}.", f"求 1 + {r} + {r}^2 + … + {r}^{n - 1} 的值。"),
        _say(zh, "A geometric series sums to (r^n - 1) ÷ (r - 1).", "等比数列求和：(r^n - 1) ÷ (r - 1)。"),
        parse_expression(f"({r}^{n}-1)/({r}-1)"),
        "total",
    )


def _diagonals(rng: random.Random, zh: bool) -> Problem:
    n = rng.randint(5, 46)
    return Problem(
        _say(zh, f"How many diagonals does a convex polygon with {n} sides have?", f"凸 {n} 边形有多少条对角线？"),
        _say(
            zh,
            "Each vertex joins n - 3 others by a diagonal, and each diagonal has two ends.",
            "每个顶点与 n - 3 个顶点连成对角线，每条对角线被数了两次。",
        ),
        parse_expression(f"{n}*({n}-3)/2"),
        "diagonals",
    )


def _sum_of_squares(rng: random.Random, zh: bool) -> Problem:
    n = rng.randint(5, 30)
    return Problem(
        _say(zh, f"Find 1^2 + 2^2 + ... + {n}^2.", f"求 1^2 + 2^2 + … + {n}^2。"),
        _say(zh, "Use n(n + 1)(2n + 1) ÷ 6.", "用公式 n(n + 1)(2n + 1) ÷ 6。"),
        parse_expression(f"{n}*({n}+1)*(2*{n}+1)/6"),
        "total",
    )


def _divisor_sum(rng: random.Random, zh: bool) -> Problem:
    while True:
        p, q = rng.sample([2, 3, 5, 7], 2)
        a, b = rng.randint(1, 3), rng.randint(1, 3)
        expr = parse_expression(f"({p}^{a + 1}-1)/({p}-1)*({q}^{b + 1}-1)/({q}-1)")
        if worked_steps(expr)[1] <= 999:
            break
    n = p**a * q**b
    return Problem(
        _say(zh, f"Find the sum of all positive divisors of {n}.", f"求 {n} 的所有正因数之和。"),
        _say(
            zh,
            f"{n} = {p}^{a} × {q}^{b}, so the sum is (1 + ... + {p}^{a}) × (1 + ... + {q}^{b}).",
            f"{n} = {p}^{a} × {q}^{b}，因数和等于 (1 + … + {p}^{a}) × (1 + … + {q}^{b})。",
        ),
        expr,
        "sigma",
    )


def _divisible_by_either(rng: random.Random, zh: bool) -> Problem:
    a, b = rng.choice([(2, 3), (2, 5), (3, 5), (3, 7), (4, 5), (5, 7)])
    top = rng.randint(100, 999)
    terms = [f"({top}-{top % d})/{d}" for d in (a, b, a * b)]
    return Problem(
        _say(
            zh,
            f"How many positive integers not exceeding {top} are divisible by {a} or {b}?",
            f"不超过 {top} 的正整数中，能被 {a} 或 {b} 整除的有多少个？",
        ),
        _say(
            zh,
            f"Inclusion-exclusion: multiples of {a} plus multiples of {b} minus multiples of {a * b}.",
            f"容斥原理：{a} 的倍数个数加 {b} 的倍数个数，减去 {a * b} 的倍数个数。",
        ),
        parse_expression(f"{terms[0]}+{terms[1]}-{terms[2]}"),
        "count",
    )


_WORD = {
    kind: _word_problem(kind)
    for kind in (
        "remaining",
        "total_price",
        "sharing",
        "distance",
        "average",
        "boxes",
        "percent_of",
        "fraction_left",
        "discount",
        "reverse_percent",
    )
}
STAGES: dict[str, list[Builder]] = {
    "grade_school": [_WORD[k] for k in ("remaining", "total_price", "sharing", "distance", "average", "boxes")],
    "middle_school": [_WORD[k] for k in ("percent_of", "fraction_left", "discount", "reverse_percent")]
    + [_fraction_arithmetic, _linear_equation, _ratio],
    "high_school": [_arithmetic_series, _geometric_term, _quadratic_value, _two_draws],
    "college": [_derivative, _integral, _determinant, _expected_roll],
    "amc8": [_sum_to, _multiples, _rectangle_area],
    "amc10": [_handshakes, _regular_angle, _consecutive],
    "amc12": [_geometric_sum, _diagonals, _sum_of_squares],
    "aime": [_divisor_sum, _diagonals, _divisible_by_either],
}
# The tool prompts ask for "middle school to competition level": every problem above grade school, once each.
STAGES["mixed"] = list(dict.fromkeys(b for stage, bs in STAGES.items() if stage != "grade_school" for b in bs))
# Topics a seed text can show (a word or symbol in it), and the problems that fit them: those are drawn 3× as often.
TOPICS: dict[tuple[str, ...], tuple[Builder, ...]] = {
    ("%", "percent", "百分"): (_WORD["percent_of"], _WORD["discount"], _WORD["reverse_percent"]),
    ("fraction", "分数", "numerator"): (_fraction_arithmetic, _WORD["fraction_left"]),
    ("equation", "方程", "solve"): (_linear_equation,),
    ("rectangle", "长方形", "perimeter", "周长"): (_rectangle_area,),
    ("prime", "质数", "factor", "因数"): (_divisor_sum, _divisible_by_either, _multiples),
    ("km", "千米", "speed"): (_WORD["distance"],),
}


def _builder(stage: str, text: str, rng: random.Random) -> Builder:
    """A problem kind of the stage, favouring those that fit the text's topic."""
    on_topic = {b for words, fits in TOPICS.items() if any(w in text.lower() for w in words) for b in fits}
    return rng.choices(STAGES[stage], [3 if b in on_topic else 1 for b in STAGES[stage]])[0]


def _python(expr: Expr, parent: int = 0, right: bool = False) -> tuple[str, bool]:
    """Python source for `expr` with exact arithmetic (integers; `Fraction` once a value is not whole), and
    whether its value is a Fraction."""
    prec = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}
    if isinstance(expr, Num):
        value = expr.value
        if value.denominator == 1 and not expr.text.endswith("%"):
            return (f"({value.numerator})" if value < 0 and (parent >= 2 or right) else str(value.numerator)), False
        percent = expr.text.endswith("%") and value * 100 == int(value * 100)
        return (
            f"Fraction({int(value * 100)}, 100)" if percent else f"Fraction({value.numerator}, {value.denominator})"
        ), True
    if isinstance(expr, Neg):
        inner, is_fraction = _python(expr.operand, 3)
        return (f"-{inner}" if parent < 3 else f"(-{inner})"), is_fraction
    p = prec[expr.op]
    if expr.op == "^":
        (left, is_fraction), (exponent, _) = _python(expr.left, p + 1), _python(expr.right, p)
        code = f"{left} ** {exponent}"
    else:
        (left, left_fraction), (right_code, right_fraction) = _python(expr.left, p), _python(expr.right, p, True)
        if expr.op == "/" and not (left_fraction or right_fraction):  # int / int would be a float
            return f"Fraction({_python(expr.left)[0]}, {_python(expr.right)[0]})", True
        code, is_fraction = f"{left} {'*' if expr.op == '*' else expr.op} {right_code}", left_fraction or right_fraction
    return (f"({code})" if p < parent or (p == parent and right and expr.op != "^") else code), is_fraction


def _marker(zh: bool, answer: str) -> str:
    return f"答案是 {answer}。" if zh else f"The answer is {answer}."


def write_reply(template: PromptTemplate, text: str, rng: random.Random) -> str:
    """A reply in `template`'s layout and language: a problem at its stage, inspired by `text`, solved."""
    zh = template.language == "zh"
    problem = _builder(template.stage, text, rng)(rng, zh)
    steps, value = worked_steps(problem.expr)
    if template.tool:
        code, _ = _python(problem.expr)
        imports = "from fractions import Fraction\n\n" if "Fraction(" in code else ""
        printed = str(value)  # what print() shows for an int or a Fraction of this value
        solution = [
            problem.intro,
            f"```python\n{imports}{problem.name} = {code}\nprint({problem.name})\n```",
            f"```output\n{printed}\n```",
            _marker(zh, printed),
        ]
    else:
        lines = [
            (f"第{i}步：" if zh else f"Step {i}: ") + f"{s.expression} = {format_number(s.result)}"
            for i, s in enumerate(steps, start=1)
        ]
        solution = [problem.intro, *lines, _marker(zh, format_number(value))]
    reply = f"## Question\n{problem.question}\n## Solution\n" + "\n".join(solution)
    return reply.removeprefix(template.response_prefix)  # the prompt already wrote it


class OracleTeacher:
    """The `oracle` backend (see the module docstring). It answers requests rendered from the `prompts` config block
    (teacher config: `prompts: ${prompts}`), by default from any shipped prompt (conf/prompts); a request
    from another prompt gets a failure."""

    backend = "oracle"
    model = MODEL

    def __init__(self, prompts: DictConfig | Mapping | None = None):
        self.prompt_set = PromptSet.shipped() if prompts is None else PromptSet.from_config(prompts)

    def complete(self, requests: Iterable[Request]) -> Iterator[Completion]:
        for request in requests:
            start = time.perf_counter()
            try:
                template = self.prompt_set.get(request.prompt_id)
                text = seed_text(template, request.messages)
            except (KeyError, ValueError):
                yield Completion(request, failure="prompt not in the oracle's prompt set")
                continue
            numbers = [int(n) for n in re.findall(r"\d+", text) if 0 < int(n) <= 10_000]
            reply = write_reply(template, text, _TextRandom(request.cache_key(self.backend, self.model), numbers))
            yield Completion(
                request,
                text=reply,
                tokens_in=len(request.prompt_text()) // CHARS_PER_TOKEN,
                tokens_out=len(reply) // CHARS_PER_TOKEN,
                seconds=time.perf_counter() - start,
                finish_reason="stop",
            )
