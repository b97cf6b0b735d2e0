"""Prompts for the two protocols. Every prompt starts where a training document starts: after `<|endoftext|>` (the
packer ends every document with it), so the model reads the first token of a prompt in the context it learned
from, never cold at position 0; a problem line (`37 + 45 =`) follows the heading a training document puts before
its lines (`Calculate:` and a newline).

- `standard` (lm-evaluation-harness style): k-shot exemplars in each task's own format; multiple choice is
  scored by the log-likelihood of the answer letters.
- `report` (MiniMATH's own scripts): zero-shot, the question in a ChatML-style chat template.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

from minimath.eval.tasks import LETTERS, RESOURCES, Doc, Task
from minimath.tokenizer import ENDOFTEXT

DOCUMENT_START = ENDOFTEXT

_CJK = re.compile(r"[\u4e00-\u9fff]")
# The benchmarks' own prompt wording (C-Eval's evaluators, CMMLU's `mp_utils.py`), subjects in Chinese from their
# published name tables (`resources/{ceval,cmmlu}_subjects.json`).
CHOICE_HEADERS = {"ceval": "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n",
                  "cmmlu": "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
                  "mmlu": "The following are multiple choice questions (with answers) about {subject}.\n\n"}
ANSWER_CUES = {"ceval": "答案：", "cmmlu": "答案是：", "mmlu": "Answer:"}


@dataclass
class Prompt:
    text: str
    stop: tuple[str, ...]
    choices: tuple[str, ...] = ()  # multiple choice continuations scored by log-likelihood


def chat(question: str) -> str:
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def _options(doc: Doc) -> str:
    return doc.question + "\n" + "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, doc.choices))


def _choice_block(doc: Doc, style: str) -> str:
    question = _options(doc)
    return ("题目：" + question if style == "cmmlu" else question) + "\n" + ANSWER_CUES[style]


@functools.cache
def subject_names(style: str) -> dict[str, str]:
    path = RESOURCES / f"{style}_subjects.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def subject_name(style: str, subject: str) -> str:
    """The subject as the benchmark's header names it: Chinese for C-Eval/CMMLU (a subject missing from the published
    table keeps its key), words for MMLU."""
    return subject_names(style).get(subject, subject.replace("_", " "))


def _choice_header(task: Task, doc: Doc) -> str:
    return CHOICE_HEADERS[task.prompt_style].format(subject=subject_name(task.prompt_style, doc.subject))


def _worked(task: Task, doc: Doc, with_answer: bool) -> str:
    """One problem in the task's own format; with its solution for an exemplar, open-ended for the target."""
    style = task.prompt_style
    if style == "gsm8k":
        return f"Question: {doc.question}\nAnswer:" + (f" {doc.solution}\nThe answer is {doc.gold}." if with_answer
                                                       else "")
    if style == "minerva":
        return f"Problem:\n{doc.question}\n\nSolution:" + (f"\n{doc.solution}" if with_answer else "")
    if style == "math23k":
        zh = bool(_CJK.search(doc.question))
        head = f"题目：{doc.question}\n" if zh else f"Question: {doc.question}\n"
        if with_answer and doc.solution:
            return head + doc.solution
        return head + ("解答：" if zh else "Solution:")
    if style == "equation":
        return doc.question + "\n"
    return doc.question + (f" {doc.gold}" if with_answer else "")  # "line": `37 + 45 =`


STOPS = {"gsm8k": ("\n\nQuestion:", "Question:"), "minerva": ("\n\nProblem:",),
         "math23k": ("\n\n题目：", "\n\nQuestion:"), "equation": ("\n\n",), "line": ("\n",)}


def build_prompt(task: Task, doc: Doc, exemplars: list[Doc], protocol: str) -> Prompt:
    """The prompt of one item; its text begins with `DOCUMENT_START`."""
    prompt = _prompt_body(task, doc, exemplars, protocol)
    return Prompt(DOCUMENT_START + prompt.text, prompt.stop, prompt.choices)


def _prompt_body(task: Task, doc: Doc, exemplars: list[Doc], protocol: str) -> Prompt:
    if protocol == "report":
        return Prompt(chat(_options(doc) if task.kind == "choice" else doc.question), stop=("<|im_end|>",))
    if protocol != "standard":
        raise ValueError(f"unknown protocol {protocol!r}: standard or report")
    if task.kind == "choice":
        shots = "".join(f"{_choice_block(e, task.prompt_style)} {e.gold}\n\n" for e in exemplars)
        return Prompt(_choice_header(task, doc) + shots + _choice_block(doc, task.prompt_style), stop=(),
                      choices=tuple(f" {letter}" for letter in LETTERS))
    separator = "\n\n" if task.prompt_style != "line" else "\n"
    shots = "".join(_worked(task, e, with_answer=True) + separator for e in exemplars)
    return Prompt(doc.context + shots + _worked(task, doc, with_answer=False),
                  stop=STOPS.get(task.prompt_style, ("\n\n",)))
