"""Prompts for the two protocols.

- `standard` (lm-evaluation-harness style): k-shot exemplars in each task's own format; multiple choice is
  scored by the log-likelihood of the answer letters.
- `report` (MiniMATH's own scripts): zero-shot, the question in a ChatML-style chat template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from minimath.eval.tasks import LETTERS, Doc, Task

_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Prompt:
    text: str
    stop: tuple[str, ...]
    choices: tuple[str, ...] = ()  # multiple choice continuations scored by log-likelihood


def chat(question: str) -> str:
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def _options(doc: Doc) -> str:
    return doc.question + "\n" + "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, doc.choices))


def _choice_block(doc: Doc, zh: bool) -> str:
    return _options(doc) + "\n" + ("答案：" if zh else "Answer:")


def _choice_header(task: Task, doc: Doc) -> str:
    subject = doc.subject.replace("_", " ")
    if task.prompt_style == "ceval":
        return f"以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n"
    return f"The following are multiple choice questions (with answers) about {subject}.\n\n"


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
    return doc.question  # "line": `37 + 45 =`


STOPS = {"gsm8k": ("\n\nQuestion:", "Question:"), "minerva": ("\n\nProblem:",),
         "math23k": ("\n\n题目：", "\n\nQuestion:"), "equation": ("\n\n",), "line": ("\n",)}


def build_prompt(task: Task, doc: Doc, exemplars: list[Doc], protocol: str) -> Prompt:
    if protocol == "report":
        return Prompt(chat(_options(doc) if task.kind == "choice" else doc.question), stop=("<|im_end|>",))
    if protocol != "standard":
        raise ValueError(f"unknown protocol {protocol!r}: standard or report")
    if task.kind == "choice":
        zh = task.prompt_style == "ceval"
        shots = "".join(f"{_choice_block(e, zh)} {e.gold}\n\n" for e in exemplars)
        return Prompt(_choice_header(task, doc) + shots + _choice_block(doc, zh), stop=(),
                      choices=tuple(f" {letter}" for letter in LETTERS))
    separator = "\n\n" if task.prompt_style != "line" else "\n"
    shots = "".join(_worked(task, e, with_answer=True) + separator for e in exemplars)
    return Prompt(shots + _worked(task, doc, with_answer=False), stop=STOPS.get(task.prompt_style, ("\n\n",)))
