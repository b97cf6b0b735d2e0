"""Prompts for the two protocols. Every prompt starts where a training document starts: after `<|endoftext|>` (the
packer ends every document with it), so the model reads the first token of a prompt in the context it learned
from, never cold at position 0; a problem line (`37 + 45 =`) follows the heading a training document puts before
its lines (`Calculate:` and a newline).

- `standard` (lm-evaluation-harness style): k-shot exemplars in each task's own format (its prompt style, one
  entry of `PROMPT_STYLES`); multiple choice is scored by the log-likelihood of the answer letters.
- `report` (MiniMATH's own scripts): zero-shot, the question in a ChatML-style chat template.
- `tool` (tool manipulation, `eval/tool.py`): zero-shot, the question in the layout of JiuZhang3.0's pairs
  (`## Question` … `## Solution`), which the tool-integrated synthesis data is written in.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from minimath.eval.benchmarks import RESOURCES
from minimath.eval.documents import LETTERS, Doc, Task, question_with_options
from minimath.tokenizer import ENDOFTEXT

DOCUMENT_START = ENDOFTEXT
CHAT_USER, CHAT_ASSISTANT = "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"
TOOL_QUESTION, TOOL_SOLUTION = "## Question\n", "\n## Solution\n"
# How answers are written, as the answer grammar reads them (`answers.py`): digits, signs, and the answer markers.
ANSWER_TEXTS = (
    "0123456789",
    " 0 1 2 3 4 5 6 7 8 9",
    " ",
    ".",
    ".\n",
    ".\n\n",
    ",",
    "%",
    "/",
    "(",
    ")",
    "=",
    "+",
    "-",
    "×",
    "÷",
    "$",
    "####",
    " The answer is",
    "Final Answer:",
    "\\boxed{",
    "}",
    "答：",
    "答案：",
    "。",
)

_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Prompt:
    text: str
    stop: tuple[str, ...]
    choices: tuple[str, ...] = ()  # multiple choice continuations scored by log-likelihood


def chat(question: str) -> str:
    return CHAT_USER + question + CHAT_ASSISTANT


@dataclass(frozen=True)
class PromptFrame:
    """What surrounds every prompt for a model: the text it starts with (ours: `<|endoftext|>`, where a training
    document starts; a transformers model: its BOS token, `eval.hf_model`) and the report protocol's chat turn."""

    start: str = DOCUMENT_START
    chat: Callable[[str], str] = chat


NATIVE = PromptFrame()


@functools.cache
def subject_names(style: str) -> dict[str, str]:
    path = RESOURCES / f"{style}_subjects.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def subject_name(style: str, subject: str) -> str:
    """The subject as the benchmark's header names it: Chinese for C-Eval/CMMLU (a subject missing from the published
    table keeps its key), words for MMLU."""
    return subject_names(style).get(subject, subject.replace("_", " "))


def _texts(values) -> tuple[str, ...]:
    return tuple(t for v in values for t in (v if isinstance(v, tuple) else (v,)))


@dataclass(frozen=True)
class WorkedStyle:
    """Problems one after another in the task's own format: the exemplars with their answers, then the target left
    open. A style's fields are every fixed text it writes (a compact vocabulary keeps their tokens: `texts`)."""

    separator: str = "\n\n"
    stops: tuple[str, ...] = ("\n\n",)

    def worked(self, doc: Doc, with_answer: bool) -> str:
        """Plain `question answer` (held-out lines, with `\n` between them: `37 + 45 = 82`)."""
        return doc.question + (f" {doc.gold}" if with_answer else "")

    def prompt(self, doc: Doc, exemplars: list[Doc]) -> Prompt:
        shots = "".join(self.worked(e, with_answer=True) + self.separator for e in exemplars)
        return Prompt(doc.context + shots + self.worked(doc, with_answer=False), stop=self.stops)

    def texts(self) -> tuple[str, ...]:
        return _texts(getattr(self, f.name) for f in dataclasses.fields(self))


@dataclass(frozen=True)
class QuestionAnswer(WorkedStyle):
    """GSM8K's chain-of-thought prompt (lm-evaluation-harness `gsm8k_cot`); an exemplar without a worked solution
    (MAWPS publishes none) states its answer only."""

    question: str = "Question:"
    answer: str = "Answer:"
    answer_is: str = "The answer is"
    stops: tuple[str, ...] = ("\n\nQuestion:", "Question:")

    def worked(self, doc: Doc, with_answer: bool) -> str:
        head = f"{self.question} {doc.question}\n{self.answer}"
        steps = f" {doc.solution}\n" if doc.solution else " "
        return head + (f"{steps}{self.answer_is} {doc.gold}." if with_answer else "")


@dataclass(frozen=True)
class ProblemSolution(WorkedStyle):
    """MATH, Minerva-style."""

    problem: str = "Problem:"
    solution: str = "Solution:"
    stops: tuple[str, ...] = ("\n\nProblem:",)

    def worked(self, doc: Doc, with_answer: bool) -> str:
        return f"{self.problem}\n{doc.question}\n\n{self.solution}" + (f"\n{doc.solution}" if with_answer else "")


@dataclass(frozen=True)
class BilingualProblem(WorkedStyle):
    """Math23k-style word problems, headed in the problem's language; an exemplar's solution is its worked steps."""

    question_zh: str = "题目："
    solution_zh: str = "解答："
    question_en: str = "Question:"
    solution_en: str = "Solution:"
    stops: tuple[str, ...] = ("\n\n题目：", "\n\nQuestion:")

    def worked(self, doc: Doc, with_answer: bool) -> str:
        zh = bool(_CJK.search(doc.question))
        head = f"{self.question_zh}{doc.question}\n" if zh else f"{self.question_en} {doc.question}\n"
        if with_answer and doc.solution:
            return head + doc.solution
        return head + (self.solution_zh if zh else self.solution_en)


@dataclass(frozen=True)
class Equation(WorkedStyle):
    """A held-out equation on its own line, as the training documents write it."""

    def worked(self, doc: Doc, with_answer: bool) -> str:
        return doc.question + "\n"


@dataclass(frozen=True)
class MultipleChoice:
    """MMLU/C-Eval/CMMLU: the benchmark's own header and answer cue (C-Eval's evaluators, CMMLU's `mp_utils.py`),
    subjects named from the published tables (`resources/<name>_subjects.json`); the answer letters are scored."""

    name: str
    header: str  # with {subject}
    cue: str
    question_prefix: str = ""

    def block(self, doc: Doc) -> str:
        return self.question_prefix + question_with_options(doc) + "\n" + self.cue

    def prompt(self, doc: Doc, exemplars: list[Doc]) -> Prompt:
        header = self.header.format(subject=subject_name(self.name, doc.subject))
        shots = "".join(f"{self.block(e)} {e.gold}\n\n" for e in exemplars)
        return Prompt(header + shots + self.block(doc), stop=(), choices=tuple(f" {letter}" for letter in LETTERS))

    def texts(self) -> tuple[str, ...]:
        """The scored letters only: the benchmarks' own wording is not kept (a compact vocabulary serves models of
        the project's data, which meet these headers as unknown tokens; keeping them would change its ids)."""
        return LETTERS + tuple(f" {letter}" for letter in LETTERS)


PROMPT_STYLES = {
    "qa": WorkedStyle(),
    "line": WorkedStyle(separator="\n", stops=("\n",)),
    "equation": Equation(),
    "gsm8k": QuestionAnswer(),
    "minerva": ProblemSolution(),
    "math23k": BilingualProblem(),
    "mmlu": MultipleChoice(
        "mmlu", "The following are multiple choice questions (with answers) about {subject}.\n\n", "Answer:"
    ),
    "ceval": MultipleChoice("ceval", "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n", "答案："),
    "cmmlu": MultipleChoice(
        "cmmlu", "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n", "答案是：", question_prefix="题目："
    ),
}


def build_prompt(task: Task, doc: Doc, exemplars: list[Doc], protocol: str, frame: PromptFrame = NATIVE) -> Prompt:
    """The prompt of one item; its text begins with `frame.start` (ours: `DOCUMENT_START`)."""
    prompt = _prompt_body(task, doc, exemplars, protocol, frame.chat)
    return Prompt(frame.start + prompt.text, prompt.stop, prompt.choices)


def _prompt_body(
    task: Task, doc: Doc, exemplars: list[Doc], protocol: str, chat_turn: Callable[[str], str] = chat
) -> Prompt:
    question = question_with_options(doc) if task.kind == "choice" else doc.question
    if protocol == "report":
        return Prompt(chat_turn(question), stop=("<|im_end|>",))
    if protocol == "tool":
        return Prompt(TOOL_QUESTION + question + TOOL_SOLUTION, stop=("\n" + TOOL_QUESTION.strip(),))
    if protocol != "standard":
        raise ValueError(f"unknown protocol {protocol!r}: standard, report or tool")
    if task.prompt_style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {task.prompt_style!r}: one of {', '.join(PROMPT_STYLES)}")
    return PROMPT_STYLES[task.prompt_style].prompt(doc, exemplars)


def protocol_texts() -> tuple[str, ...]:
    """Every fixed text the protocols write or score — each prompt style's texts, the chat template, the answers'
    digits, signs and markers — so a compact vocabulary (`tokenizer.CompactTokenizer.keeping`) can express them."""
    styles = _texts(style.texts() for style in PROMPT_STYLES.values())
    return tuple(dict.fromkeys(styles + (CHAT_USER, CHAT_ASSISTANT) + ANSWER_TEXTS))
