"""Synthesis prompts (JiuZhang3.0's education-stage prompts, in MiniMATH's own words): which prompt a seed text
gets, the messages sent to the teacher, and the (problem, solution, answer) read back from its reply.

The prompt sets live in `conf/prompts/` (a Hydra group: `prompts=cot_en|cot_zh|tool_en|tool_zh|all`). Choosing a
prompt is a hash of (seed, seed_id), never a draw from a running generator, so a resumed or re-sharded run gives
every text the prompt it got the first time.

The reply layout is JiuZhang3.0's `## Question\\n…\\n## Solution\\n…`; the solution ends with the answer marker
`The answer is N.` / `答案是 N。`, read by the evaluation's grammar (`minimath.eval.answers`). The answer must be
a number (integer, fraction, decimal, percentage, or an arithmetic expression of numbers such as `\\frac{3}{4}`),
optionally followed by a unit word: `x^2+1`, `\\sqrt{2}` or `3π` are refused, because a verifier compares
answers exactly and every prompt asks for a numeric answer (a higher-stage problem asks for a value, `f(3)`, not
an expression).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from minimath.config import CONF_DIR
from minimath.errors import UserError
from minimath.eval.answers import answer_value, marked_span, numeric_answer
from minimath.numbers import normalize_math_text
from minimath.synthesis.records import Example

LANGUAGES = ("en", "zh")
TEXT = "{text}"  # where a template puts the seed text (replaced literally: templates may contain other braces)

_QUESTION = re.compile(r"^[ \t]*#{1,4}[ \t]*Question\b[ \t]*[:：]?", re.MULTILINE | re.IGNORECASE)
_SOLUTION = re.compile(r"^[ \t]*#{1,4}[ \t]*Solution\b[ \t]*[:：]?", re.MULTILINE | re.IGNORECASE)
_PYTHON = re.compile(r"```python[ \t]*\n(.*?)```", re.DOTALL)
_OUTPUT = re.compile(r"```output[ \t]*\n(.*?)```", re.DOTALL)
_UNIT = r"[A-Za-z\u4e00-\u9fff]+(?:[ \t/]+[A-Za-z\u4e00-\u9fff]+)*"
# An answer span: an optional `x =`, the number (an expression of numbers), an optional unit.
_ANSWER = re.compile(rf"^(?:[A-Za-z]\s*=\s*)?([-+0-9.*/×÷^()%\s]*\d[-+0-9.*/×÷^()%\s]*?)\s*(?:{_UNIT})?$")


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt: chat messages with the seed text at `{text}`. `stage`: the education stage it asks for
    (`grade_school` … `aime`; `mixed` for the tool prompts); `tool`: the solution is a Python program and its
    printed output; `weight`: its share of the seeded mix; `response_prefix`: text `render` puts at the end of
    the prompt and the reply continues (`## Question\\n`), so a reply may start right with the problem."""

    id: str
    stage: str
    language: str
    tool: bool
    weight: float
    system: str
    user: str
    response_prefix: str = ""

    def __post_init__(self):
        if self.user.count(TEXT) != 1:
            raise UserError(f"prompt {self.id}: the user template must contain {TEXT} exactly once")
        if self.language not in LANGUAGES:
            raise UserError(f"prompt {self.id}: language must be one of {', '.join(LANGUAGES)}, not {self.language!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or self.weight <= 0:
            raise UserError(f"prompt {self.id}: weight must be positive, not {self.weight}")

    def user_message(self, text: str) -> str:
        tail = f"\n\n{self.response_prefix}" if self.response_prefix else ""
        return self.user.replace(TEXT, text) + tail


@dataclass(frozen=True)
class PromptSet:
    """The templates of a `prompts` config block (`templates`: id → template fields; `name` and the `shared`
    text the templates interpolate are not read here)."""

    templates: tuple[PromptTemplate, ...]

    @classmethod
    def from_config(cls, block: DictConfig | Mapping[str, Any]) -> PromptSet:
        """The set from a composed `prompts` block (a DictConfig, or a plain dict with the same keys);
        interpolations are resolved, every template is validated (one-line `UserError`s)."""
        node = block if isinstance(block, DictConfig) else OmegaConf.create(dict(block))
        config = OmegaConf.to_container(node, resolve=True)
        entries = config.get("templates")
        if not isinstance(entries, dict) or not entries:
            raise UserError(
                "prompts: `templates` must map prompt ids to templates; choose prompts=cot_en, cot_zh, "
                "tool_en, tool_zh or all"
            )
        names = {f.name for f in fields(PromptTemplate)} - {"id"}
        required = {f.name for f in fields(PromptTemplate) if f.default is MISSING} - {"id"}
        templates = []
        for prompt_id, entry in entries.items():
            keys = set(entry or {})
            if missing := sorted(required - keys):
                raise UserError(f"prompt {prompt_id}: missing {', '.join(missing)}")
            if unknown := sorted(keys - names):
                raise UserError(
                    f"prompt {prompt_id}: unknown field(s) {', '.join(unknown)}; the fields are "
                    f"{', '.join(sorted(names))}"
                )
            templates.append(PromptTemplate(id=str(prompt_id), **entry))
        return cls(tuple(sorted(templates, key=lambda t: t.id)))

    @classmethod
    def shipped(cls) -> PromptSet:
        """Every template of every option in conf/prompts (each file read on its own; `all` only composes them)."""
        blocks = [OmegaConf.load(path) for path in sorted((CONF_DIR / "prompts").glob("*.yaml"))]
        templates = [t for block in blocks if "templates" in block for t in cls.from_config(block).templates]
        ids = [t.id for t in templates]
        if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
            raise UserError(
                f"conf/prompts: prompt id(s) {', '.join(duplicates)} in more than one option (prompts=all "
                f"would keep only one); rename them"
            )
        return cls(tuple(sorted(templates, key=lambda t: t.id)))

    def get(self, prompt_id: str) -> PromptTemplate:
        for template in self.templates:
            if template.id == prompt_id:
                return template
        raise KeyError(prompt_id)


def choose_prompt(prompt_set: PromptSet, seed_id: str, seed: int) -> PromptTemplate:
    """The template for one seed text: a draw by weight from a hash of (seed, seed_id) alone, so it does not
    depend on which other texts are in the run or in what order they come."""
    digest = hashlib.sha256(f"{seed}\0{seed_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(t.weight for t in prompt_set.templates)
    for template in prompt_set.templates:
        point -= template.weight
        if point < 0:
            return template
    return prompt_set.templates[-1]  # float rounding at the very top of the range


class TextTooLong(ValueError):
    """A seed text over the prompt's limit: the caller skips it and counts the skip (`seeds.on_too_long` decides
    earlier whether long texts are truncated instead)."""


def render(template: PromptTemplate, text: str, max_text_chars: int | None = None) -> tuple[tuple[str, str], ...]:
    """The (system, user) messages for one seed text (`records.Request.messages`); TextTooLong when the text has
    more than `max_text_chars` characters."""
    if max_text_chars is not None and len(text) > max_text_chars:
        raise TextTooLong(f"seed text of {len(text):,} characters, over the limit of {max_text_chars:,}")
    return ("system", template.system), ("user", template.user_message(text))


def seed_text(template: PromptTemplate, messages: tuple[tuple[str, str], ...]) -> str:
    """The seed text inside messages that `render` made from `template` (a programmatic teacher reads it back);
    ValueError when the messages were not made from this template."""
    user = next((content for role, content in messages if role == "user"), "")
    head, tail = template.user_message(TEXT).split(TEXT)
    if not (user.startswith(head) and user.endswith(tail) and len(user) >= len(head) + len(tail)):
        raise ValueError(f"the messages were not rendered from prompt {template.id}")
    return user[len(head) : len(user) - len(tail)]


class ParseFailure(ValueError):
    """A reply that does not hold a usable example; `reason` is short and countable ('no answer marker')."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _up_to_answer(solution: str, start: int) -> tuple[str, str]:
    """The solution through the line of its last answer marker at or after `start` (what follows, such as
    'I hope this helps!', is dropped), and that marker's span."""
    lines = solution[start:].split("\n")
    marked = [i for i, line in enumerate(lines) if marked_span(line) is not None]
    if not marked:
        raise ParseFailure("no answer marker")
    return solution[:start] + "\n".join(lines[: marked[-1] + 1]), marked_span(lines[marked[-1]])


def _number(span: str) -> str:
    """The number an answer span states (see the module docstring for what counts as a number)."""
    m = _ANSWER.match(normalize_math_text(span).strip(" \t:").rstrip(".。").strip())
    if m is None or answer_value(m[1]) is None:
        raise ParseFailure("answer does not parse as a number")
    return numeric_answer(m[1])


def parse(output_text: str, template: PromptTemplate, *, seed_id: str = "", text_hash: str = "") -> Example:
    """The example in a teacher's reply, or ParseFailure. Accepted: a reply that repeats `## Question` or (when
    the prompt ends with it, `response_prefix`) starts with the problem; chatter before the question or after
    the answer line, which is dropped; a run-on into another `## Question`, which ends the example. Refused: no
    question, no solution, two solution sections for one question, no answer marker, an answer that is not a
    number; for tool prompts, no ```python block or no ```output block after it (the marker must follow it)."""
    text = output_text.replace("\r\n", "\n")
    solutions = list(_SOLUTION.finditer(text))
    if not solutions:
        raise ParseFailure("no solution section")
    solution_head = solutions[0]
    questions = list(_QUESTION.finditer(text))
    before = [m for m in questions if m.start() < solution_head.start()]
    if not before and not template.response_prefix:
        raise ParseFailure("no question section")
    problem = text[before[-1].end() if before else 0 : solution_head.start()].strip()
    if not problem:
        raise ParseFailure("no question section")
    end = next((m.start() for m in questions if m.start() > solution_head.start()), len(text))
    if any(m.start() < end for m in solutions[1:]):
        raise ParseFailure("two solution sections")
    solution = text[solution_head.end() : end].strip("\n")
    program = claimed_output = None
    answer_from = 0
    if template.tool:
        code = _PYTHON.search(solution)
        if code is None:
            raise ParseFailure("no python block")
        output = _OUTPUT.search(solution, code.end())
        if output is None:
            raise ParseFailure("no output block")
        program, claimed_output, answer_from = code[1], output[1].strip("\n"), output.end()
    solution, span = _up_to_answer(solution, answer_from)
    return Example(
        problem=problem,
        solution=solution.strip(),
        answer=_number(span),
        prompt_id=template.id,
        seed_id=seed_id,
        text_hash=text_hash,
        program=program,
        claimed_output=claimed_output,
    )
