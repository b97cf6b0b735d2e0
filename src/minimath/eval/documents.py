"""What an evaluation is made of: items with their gold answers (`Doc`), and a set of them with how it is prompted
and scored (`Task`). Kept apart from the loaders so the benchmark registry and the loaders can both build them."""

from __future__ import annotations

from dataclasses import dataclass, field

LETTERS = ("A", "B", "C", "D")


@dataclass
class Doc:
    question: str
    gold: str
    choices: list[str] = field(default_factory=list)  # multiple choice: the four options, gold is a letter
    subject: str = ""
    solution: str = ""  # a worked solution (few-shot exemplars)
    category: str = ""  # a breakdown of the accuracy (held-out arithmetic: the operator)
    context: str = ""  # what a training document writes before the problem (held-out arithmetic: its heading)


def question_with_options(doc: Doc) -> str:
    """The question, then a multiple-choice item's options as the prompts write them (`A. …`, a line each)."""
    return doc.question + "\n" + "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, doc.choices))


@dataclass
class Task:
    name: str
    # numeric | math | choice | assignments (an equation's or a system's solution: `x = 3, y = 5`) | number_or_text
    # (a number, or a word compared as a word: TabMWP's options, ASDiv's names)
    kind: str
    docs: list[Doc]
    fewshot: list[Doc] = field(default_factory=list)
    prompt_style: str = "qa"  # how the standard protocol writes prompts (a key of prompts.PROMPT_STYLES)
    fewshot_source: str = "none"  # where the exemplars came from: a path, a hub id, or the project's fixed file
