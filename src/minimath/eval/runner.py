"""Run tasks under a protocol, score every item with a recorded reason, and write results.

Results: `results.json` (accuracy, n, and every setting that produced it), `<task>.jsonl` (one line per item:
prompt, output, extracted answer, gold, correct, form_ok, reason) and `results.md` in the report's column layout
(a suite's tasks, when all ran, in the suite's table: `benchmarks.SUITES`).
`correct` is the value; `form_ok` whether the answer has the form the problem asks for (`forms.py`; None when it
asks for none), and a task with checked forms also reports `accuracy_with_form` (right value in the asked form).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol as TypingProtocol
from typing import runtime_checkable

from minimath.errors import UserError
from minimath.eval.answers import (
    answer_value,
    asks_percent,
    assignments,
    extract_answer,
    extract_assignments,
    extract_choice,
    math_equal,
    numbers_equal,
    stated_text,
    texts_equal,
)
from minimath.eval.benchmarks import BENCHMARKS, SUITES, Suite
from minimath.eval.documents import LETTERS, Doc, Task
from minimath.eval.forms import form_ok
from minimath.eval.generation import GenerationConfig, generate, loglikelihoods, new_token_budget
from minimath.eval.prompts import NATIVE, Prompt, PromptFrame, build_prompt
from minimath.eval.tool import ToolSettings, solve_with_tool, tool_summary
from minimath.io import atomic_write_bytes, atomic_write_json
from minimath.model import Transformer
from minimath.tokenizer import TokenizerLike

# The report's table (the benchmarks' `column`s, in the registry's order), and the average of its math columns.
REPORT_COLUMNS = [(b.format, b.column) for b in BENCHMARKS.values() if b.column]
MATH_COLUMNS = tuple(b.format for b in BENCHMARKS.values() if b.in_math_average)


@dataclass
class Protocol:
    name: str  # standard | report | tool
    shots: dict
    extraction: str  # where no answer marker is: auto (the last line) | last_number (the whole output)
    subset: int | None
    seed: int
    generation: GenerationConfig
    batch_size: int = 16
    bare_percent: bool = True  # a bare 35 also answers a 35% gold
    tool: ToolSettings | None = None  # protocol=tool: programs run in the sandbox between generation rounds

    @classmethod
    def heldout(cls, max_new_tokens: int = 96, batch_size: int = 25, seed: int = 0) -> Protocol:
        """How every held-out set is measured during and after training (the in-training callback and the
        curriculum table): zero-shot, greedy, the standard answer grammar."""
        return cls(
            name="standard",
            shots={},
            extraction="auto",
            subset=None,
            seed=seed,
            generation=GenerationConfig(max_new_tokens=max_new_tokens),
            batch_size=batch_size,
        )

    def shots_for(self, task: str) -> int:
        return int(self.shots.get(task, 0)) if self.name == "standard" else 0


@runtime_checkable
class LanguageModel(TypingProtocol):
    """What a task asks of a model: its context length, how prompts are framed for it, batched generation and
    log-likelihoods. Ours is `NativeModel`; a transformers model is `eval.hf_model.HFCausalLM`."""

    max_seq_len: int

    def frame(self) -> PromptFrame: ...

    def generate(self, prompts: Sequence[list[int]], cfg: GenerationConfig) -> list[str]: ...

    def loglikelihoods(self, contexts: Sequence[list[int]], continuations: Sequence[list[int]]) -> list[float]: ...


@dataclass
class NativeModel:
    """Our Transformer: prompts after `<|endoftext|>`, decoded by `generation.generate` with its KV cache."""

    model: Transformer
    tokenizer: TokenizerLike

    @property
    def max_seq_len(self) -> int:
        return self.model.config.max_seq_len

    def frame(self) -> PromptFrame:
        return NATIVE

    def generate(self, prompts: Sequence[list[int]], cfg: GenerationConfig) -> list[str]:
        return generate(self.model, self.tokenizer, prompts, cfg)

    def loglikelihoods(self, contexts: Sequence[list[int]], continuations: Sequence[list[int]]) -> list[float]:
        return loglikelihoods(self.model, contexts, continuations)


def language_model(model: Transformer | LanguageModel, tokenizer: TokenizerLike) -> LanguageModel:
    return model if isinstance(model, LanguageModel) else NativeModel(model, tokenizer)


def select(docs: Sequence[Doc], subset: int | None, seed: int) -> list[tuple[int, Doc]]:
    """(doc_id, doc) pairs: all, or a seeded random subset (the report scored random 1,000-item subsets)."""
    indexed = list(enumerate(docs))
    if subset is None or subset >= len(indexed):
        return indexed
    return sorted(random.Random(seed).sample(indexed, subset), key=lambda p: p[0])


def exemplars(task: Task, doc: Doc, k: int, seed: int) -> list[Doc]:
    """k seeded few-shot exemplars; for multiple choice, from the same subject (MMLU's dev-set convention)."""
    pool = [d for d in task.fewshot if task.kind != "choice" or d.subject == doc.subject]
    random.Random(f"fewshot-{task.name}-{doc.subject}-{seed}").shuffle(pool)
    return pool[:k]


@dataclass
class FittedPrompt:
    prompt: Prompt
    ids: list[int]
    shots: int  # exemplars kept
    truncated: bool  # even zero-shot did not fit: the model sees the prompt's end only


def fit_prompt(
    task: Task,
    doc: Doc,
    shots: list[Doc],
    protocol: str,
    tokenizer: TokenizerLike,
    room: int,
    frame: PromptFrame = NATIVE,
) -> FittedPrompt:
    """The prompt with as many of its exemplars as fit in `room` tokens (the last ones dropped first); a prompt
    too long even without exemplars is marked truncated, never cut silently."""
    for keep in range(len(shots), -1, -1):
        prompt = build_prompt(task, doc, shots[:keep], protocol, frame)
        ids = tokenizer.encode(prompt.text)
        if len(ids) <= room:
            return FittedPrompt(prompt, ids, keep, truncated=False)
    return FittedPrompt(prompt, ids, 0, truncated=True)


def score_output(task: Task, doc: Doc, output: str, protocol: Protocol) -> dict:
    """One item's verdict, with the reason when it is wrong, and (numeric and MATH answers) whether the answer
    has the form the problem asks for."""
    if not output.strip():
        return {"extracted": None, "correct": False, "form_ok": None, "reason": "empty output"}
    form = None
    if task.kind == "choice":
        extracted = extract_choice(output)
        correct = extracted == doc.gold
    elif task.kind == "math":
        extracted = extract_answer(output, "boxed")
        correct = math_equal(extracted, doc.gold, doc.question)
        form = form_ok(doc.question, extracted)
    elif task.kind == "assignments":  # an equation's or a system's solution: every unknown, nothing else
        stated = extract_assignments(output)
        extracted = None if stated is None else ", ".join(f"{k} = {v}" for k, v in stated.items())
        correct = stated is not None and stated == assignments(doc.gold)
    elif task.kind == "number_or_text" and answer_value(doc.gold) is None:  # a word: TabMWP's "yes", an option
        extracted = stated_text(output)
        correct = texts_equal(extracted, doc.gold)
    else:
        if answer_value(doc.gold) is None:
            return {"extracted": None, "correct": False, "form_ok": None, "reason": "gold is not a number"}
        extracted = extract_answer(output, protocol.extraction)
        correct = numbers_equal(
            extracted, doc.gold, bare_percent=protocol.bare_percent, percent_question=asks_percent(doc.question)
        )
        form = form_ok(doc.question, extracted)
    reason = "" if correct else ("no answer found" if extracted is None else "wrong answer")
    return {"extracted": extracted, "correct": bool(correct), "form_ok": form, "reason": reason}


def _choice_by_loglikelihood(lm: LanguageModel, context: list[int], continuations: list[list[int]], doc: Doc) -> dict:
    scores = lm.loglikelihoods([context] * len(continuations), continuations)
    best = LETTERS[max(range(len(scores)), key=scores.__getitem__)]
    return {
        "output": best,
        "extracted": best,
        "correct": best == doc.gold,
        "loglikelihoods": scores,
        "reason": "" if best == doc.gold else "wrong answer",
    }


def _answer_letters(tokenizer: TokenizerLike, task: Task, letters: Sequence[str]) -> list[list[int]]:
    """The answer continuations' ids; a vocabulary that cannot write one of them makes the task meaningless."""
    encoded = [tokenizer.encode(letter) for letter in letters]
    unk = getattr(tokenizer, "unk_id", None)
    missing = [letter for letter, ids in zip(letters, encoded) if unk is not None and unk in ids]
    if missing:
        raise UserError(
            f"task {task.name}: the model's vocabulary ({tokenizer.name}) has no token for "
            f"{', '.join(repr(m) for m in missing)}; multiple choice cannot be scored with it"
        )
    return encoded


def run_task(
    model: Transformer | LanguageModel, tokenizer: TokenizerLike, task: Task, protocol: Protocol
) -> tuple[dict, list[dict]]:
    """Accuracy summary and per-item records of one task: our Transformer, or any `LanguageModel`."""
    lm = language_model(model, tokenizer)
    chosen = select(task.docs, protocol.subset, protocol.seed)
    k = protocol.shots_for(task.name)
    if k and not task.fewshot:
        raise UserError(
            f"task {task.name}: {k}-shot needs few-shot exemplars and none were found "
            f"(set the task's fewshot_path, or protocol.shots.{task.name}=0)"
        )
    choice_ll = task.kind == "choice" and protocol.name == "standard"
    max_len = lm.max_seq_len
    new_tokens = new_token_budget(max_len, protocol.generation.max_new_tokens)
    letters = (
        _answer_letters(tokenizer, task, build_prompt(task, task.docs[0], [], "standard").choices) if choice_ll else []
    )
    room = max_len + 1 - max(map(len, letters)) if choice_ll else max_len - new_tokens
    frame = lm.frame()
    fitted = [
        fit_prompt(task, doc, exemplars(task, doc, k, protocol.seed), protocol.name, tokenizer, room, frame)
        for _, doc in chosen
    ]
    records, stops_used, layers = [], set(), ()
    if choice_ll:
        for (doc_id, doc), f in zip(chosen, fitted):
            records.append(
                {
                    "doc_id": doc_id,
                    "prompt": f.prompt.text,
                    "gold": doc.gold,
                    "shots": f.shots,
                    "truncated": f.truncated,
                    **_choice_by_loglikelihood(lm, f.ids, letters, doc),
                }
            )
    else:
        for start in range(0, len(chosen), protocol.batch_size):
            batch = list(zip(chosen, fitted))[start : start + protocol.batch_size]
            stops = tuple(sorted({s for _, f in batch for s in f.prompt.stop}))
            stops_used.update(stops)
            cfg = GenerationConfig(**{**vars(protocol.generation), "stop": stops})
            ids = [f.ids for _, f in batch]
            if protocol.tool:
                transcripts = solve_with_tool(lm.generate, ids, tokenizer.encode, cfg, protocol.tool, room)
                outputs = [t.text for t in transcripts]
                extra = [{"tool": vars(t.counts)} for t in transcripts]
                layers = next((t.layers for t in transcripts if t.layers), layers)
            else:
                outputs, extra = lm.generate(ids, cfg), [{}] * len(batch)
            for ((doc_id, doc), f), output, more in zip(batch, outputs, extra):
                records.append(
                    {
                        "doc_id": doc_id,
                        "prompt": f.prompt.text,
                        "output": output,
                        "gold": doc.gold,
                        "shots": f.shots,
                        "truncated": f.truncated,
                        **_category(doc),
                        **more,
                        **score_output(task, doc, output, protocol),
                    }
                )
    settings = {
        "shots_used": _spread([f.shots for f in fitted]),
        "fewshot_source": task.fewshot_source if k else None,
        "truncated": sum(f.truncated for f in fitted),
        "prompts_with_unknown_tokens": sum(bool(_unknown(tokenizer, f.ids)) for f in fitted),
    }
    if not choice_ll:
        settings["generation"] = {
            **vars(protocol.generation),
            "max_new_tokens": new_tokens,
            "max_new_tokens_requested": protocol.generation.max_new_tokens,
            "stop": sorted(stops_used),
        }
    summary = summarize(task.name, records, protocol, settings)
    if protocol.tool and not choice_ll:
        summary["tool"] = tool_summary(records, layers)
    return summary, records


def _category(doc: Doc) -> dict:
    return {"category": doc.category} if doc.category else {}


def _unknown(tokenizer: TokenizerLike, ids: list[int]) -> int:
    unk = getattr(tokenizer, "unk_id", None)
    return 0 if unk is None else sum(1 for i in ids if i == unk)


def _spread(values: list[int]) -> dict:
    return {"min": min(values), "max": max(values)} if values else {"min": 0, "max": 0}


def summarize(name: str, records: list[dict], protocol: Protocol | None = None, settings: dict | None = None) -> dict:
    """Accuracy over the records, with every protocol setting that produced it (as run, not as requested)."""
    n = len(records)
    summary = {"task": name, "n": n, "accuracy": sum(r["correct"] for r in records) / n if n else 0.0}
    categories = sorted({r["category"] for r in records if "category" in r})
    if categories:  # e.g. held-out arithmetic per operator
        summary["by_category"] = {
            c: sum(r["correct"] for r in records if r.get("category") == c)
            / sum(r.get("category") == c for r in records)
            for c in categories
        }
    checked = sum(r.get("form_ok") is not None for r in records)
    if checked:  # problems that state the answer's form ("as a common fraction"): right value in that form
        summary["form_checked"] = checked
        summary["accuracy_with_form"] = sum(r["correct"] and r.get("form_ok") is not False for r in records) / n
    unscorable = sum(r.get("reason") == "gold is not a number" for r in records)
    if unscorable:
        summary["unscorable_golds"] = unscorable
    if protocol is not None:
        summary["protocol"] = {
            "name": protocol.name,
            "shots": protocol.shots_for(name),
            "extraction": protocol.extraction,
            "bare_percent": protocol.bare_percent,
            "subset": protocol.subset,
            "seed": protocol.seed,
            "generation": vars(protocol.generation),
            **({"tool": dataclasses.asdict(protocol.tool)} if protocol.tool else {}),
            **(settings or {}),
        }
    return summary


def rescore(task: Task, predictions: list[dict], protocol: Protocol) -> tuple[dict, list[dict]]:
    """Score saved outputs (`{"doc_id", "output"}` lines) on the items the protocol selects (its subset and seed);
    a selected item without a prediction counts wrong, a doc_id outside the selection is an error."""
    chosen = select(task.docs, protocol.subset, protocol.seed)
    selected = {doc_id for doc_id, _ in chosen}
    by_id: dict[int, str] = {}
    for p in predictions:
        doc_id = int(p["doc_id"])
        if doc_id not in selected:
            raise UserError(
                f"prediction for doc_id {doc_id}: not one of the {len(selected)} items the protocol "
                f"selects from {task.name} ({len(task.docs)} items, subset={protocol.subset}, "
                f"seed={protocol.seed})"
            )
        if doc_id in by_id:
            raise UserError(f"two predictions for doc_id {doc_id}")
        by_id[doc_id] = str(p.get("output") or "")
    records = []
    for doc_id, doc in chosen:
        if doc_id not in by_id:
            records.append(
                {
                    "doc_id": doc_id,
                    "gold": doc.gold,
                    "output": None,
                    "extracted": None,
                    "correct": False,
                    "reason": "missing prediction",
                    **_category(doc),
                }
            )
            continue
        records.append(
            {
                "doc_id": doc_id,
                "gold": doc.gold,
                "output": by_id[doc_id],
                **_category(doc),
                **score_output(task, doc, by_id[doc_id], protocol),
            }
        )
    return summarize(task.name, records, protocol, {"fewshot_source": None}), records


def markdown_table(summaries: dict[str, dict], model_name: str) -> str:
    """Accuracy in percent of the tasks that were run: a suite whose every task ran (`tasks=jiuzhang`) in its own
    table, with its average; the other tasks in the report's columns in its order (with its Math Avg. when a math
    task ran), then any others."""
    tables, rest = [], dict(summaries)
    for suite in SUITES.values():
        if all(task in summaries for task in suite.tasks):
            tables.append(_suite_table(suite, summaries, model_name))
            rest = {k: v for k, v in rest.items() if k not in suite.tasks}
    if rest or not tables:
        tables.append(_report_table(rest, model_name))
    return "\n\n".join(tables)


def _percent(value: float) -> str:
    return f"{value:.2f}%"


def _table(head: list[str], row: list[str]) -> str:
    return "\n".join(["|" + "|".join(head) + "|", "|" + "|".join("-" for _ in head) + "|", "|" + "|".join(row) + "|"])


def _suite_table(suite: Suite, summaries: dict[str, dict], model_name: str) -> str:
    values = [100 * summaries[task]["accuracy"] for task in suite.tasks]
    head = ["model"] + [title for _, title in suite.columns] + [suite.average]
    return _table(head, [model_name] + [_percent(v) for v in values] + [_percent(sum(values) / len(values))])


def _report_table(summaries: dict[str, dict], model_name: str) -> str:
    cols = [(key, title) for key, title in REPORT_COLUMNS if key in summaries]
    extra = [(k, k) for k in summaries if k not in dict(REPORT_COLUMNS)]

    def cell(k):
        return _percent(100 * summaries[k]["accuracy"])

    math = [100 * summaries[k]["accuracy"] for k in MATH_COLUMNS if k in summaries]
    average = [("Math Avg.", _percent(sum(math) / len(math)))] if math else []
    head = ["model"] + [t for _, t in cols] + [t for t, _ in average] + [t for _, t in extra]
    row = [model_name] + [cell(k) for k, _ in cols] + [v for _, v in average] + [cell(k) for k, _ in extra]
    return _table(head, row)


def write_results(out_dir: Path, summaries: dict[str, dict], records: dict[str, list[dict]], model_name: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in records.items():
        atomic_write_bytes(
            out_dir / f"{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        )
    atomic_write_json(out_dir / "results.json", {"model": model_name, "tasks": summaries})
    atomic_write_bytes(out_dir / "results.md", (markdown_table(summaries, model_name) + "\n").encode("utf-8"))
