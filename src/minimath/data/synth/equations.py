"""Elementary linear equations with solution steps (one unknown, then 2×2 systems), in English and Chinese.

Every equation is built backwards from an integer solution, so each step is exact and the solution checks.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from minimath.data.synth.base import SPLITS, DocumentGenerator, check_subset, draw_in_split

FORMS = ("ax+b=c", "a(x+b)=c", "ax+b=cx+d", "system")
LANGUAGES = ("en", "zh")


def _term(coef: int, var: str) -> str:
    return var if coef == 1 else f"-{var}" if coef == -1 else f"{coef}{var}"


def _plus(value: int) -> str:
    return f"+ {value}" if value >= 0 else f"- {-value}"


@dataclass
class Solved:
    question: str
    steps: list[str]
    answer: dict[str, int]
    form: str = ""  # which of FORMS it is (held-out sets report accuracy per form)


class _Phrases:
    def __init__(self, lang: str):
        self.zh = lang == "zh"

    def solve(self, eq: str) -> str:
        return f"解方程：{eq}" if self.zh else f"Solve {eq}."

    def sub(self, v: int, eq: str) -> str:
        if v >= 0:
            return f"两边同时减去 {v}，得 {eq}。" if self.zh else f"Subtract {v} from both sides: {eq}."
        return f"两边同时加上 {-v}，得 {eq}。" if self.zh else f"Add {-v} to both sides: {eq}."

    def div(self, v: int, eq: str) -> str:
        return f"两边同时除以 {v}，得 {eq}。" if self.zh else f"Divide both sides by {v}: {eq}."

    def expand(self, eq: str) -> str:
        return f"去括号，得 {eq}。" if self.zh else f"Expand the brackets: {eq}."

    def move(self, eq: str) -> str:
        return f"移项，合并同类项，得 {eq}。" if self.zh else f"Collect the x terms on the left: {eq}."

    def answer(self, sol: dict[str, int]) -> str:
        text = ", ".join(f"{k} = {v}" for k, v in sol.items())
        return f"所以 {text}。" if self.zh else f"So {text}."


@dataclass
class LinearEquationSource(DocumentGenerator):
    forms: tuple[str, ...] = FORMS
    languages: tuple[str, ...] = LANGUAGES
    max_solution: int = 20
    max_coefficient: int = 9
    problems_per_doc: int = 3
    split: str = "train"  # train | heldout (a disjoint 2% of problems, for evaluation)

    def __post_init__(self):
        check_subset("split", (self.split,), SPLITS)
        self.forms = check_subset("forms", self.forms, FORMS)
        self.languages = check_subset("languages", self.languages, LANGUAGES)

    def _coef(self, rng: random.Random) -> int:
        return rng.randint(2, self.max_coefficient)

    @staticmethod
    def _nonzero(rng: random.Random, bound: int) -> int:
        return rng.randint(1, bound) * rng.choice((1, -1))

    def _solution(self, rng: random.Random) -> int:
        return rng.randint(-self.max_solution, self.max_solution)

    def problem(self, rng: random.Random, lang: str) -> Solved:
        """One solved problem from this source's split (keyed by its equation, whatever the language)."""
        return draw_in_split(
            lambda: self._any_problem(rng, lang),
            lambda p: p.question.removeprefix("Solve ").removeprefix("解方程：").rstrip("."),
            self.split,
        )

    def _any_problem(self, rng: random.Random, lang: str) -> Solved:
        form = rng.choice(self.forms)
        return dataclasses.replace(self._problem_of_form(rng, lang, form), form=form)

    def _problem_of_form(self, rng: random.Random, lang: str, form: str) -> Solved:
        say = _Phrases(lang)
        x = self._solution(rng)
        if form == "ax+b=c":
            a, b = self._coef(rng), self._nonzero(rng, 30)
            c = a * x + b
            eq = f"{a}x {_plus(b)} = {c}"
            steps = [say.sub(b, f"{a}x = {c - b}"), say.div(a, f"x = {x}")]
        elif form == "a(x+b)=c":
            a, b = self._coef(rng), self._nonzero(rng, 12)
            c = a * (x + b)
            eq = f"{a}(x {_plus(b)}) = {c}"
            steps = [
                say.expand(f"{a}x {_plus(a * b)} = {c}"),
                say.sub(a * b, f"{a}x = {c - a * b}"),
                say.div(a, f"x = {x}"),
            ]
        elif form == "ax+b=cx+d":
            c = self._coef(rng)
            a = c + self._coef(rng) - 1
            b = self._nonzero(rng, 30)
            d = (a - c) * x + b
            eq = f"{a}x {_plus(b)} = {c}x {_plus(d)}"
            k = a - c
            steps = [say.move(f"{_term(k, 'x')} {_plus(b)} = {d}"), say.sub(b, f"{_term(k, 'x')} = {d - b}")]
            if k != 1:
                steps.append(say.div(k, f"x = {x}"))
        else:
            return self._system(rng, say, x)
        return Solved(say.solve(eq), steps, {"x": x})

    def _system(self, rng: random.Random, say: _Phrases, x: int) -> Solved:
        """x + y = s and a·x − y = t, solved by adding the equations (elimination)."""
        y = self._solution(rng)
        a = self._coef(rng)
        s, t = x + y, a * x - y
        eq = f"x + y = {s}, {a}x - y = {t}"
        if say.zh:
            steps = [
                f"两式相加消去 y，得 {a + 1}x = {s + t}。",
                f"两边同时除以 {a + 1}，得 x = {x}。",
                f"代入 x + y = {s}，得 y = {s} - ({x}) = {y}。",
            ]
        else:
            steps = [
                f"Add the equations to eliminate y: {a + 1}x = {s + t}.",
                f"Divide both sides by {a + 1}: x = {x}.",
                f"Substitute into x + y = {s}: y = {s} - ({x}) = {y}.",
            ]
        return Solved(say.solve(eq), steps, {"x": x, "y": y})

    def document(self, rng: random.Random) -> str:
        lang = rng.choice(self.languages)
        say = _Phrases(lang)
        blocks = []
        for _ in range(self.problems_per_doc):
            solved = self.problem(rng, lang)
            blocks.append("\n".join([solved.question, *solved.steps, say.answer(solved.answer)]))
        return "\n\n".join(blocks)
