"""Run tasks under a protocol, score every item with a recorded reason, and write results.

Results: `results.json` (accuracy, n, and every setting that produced it), `<task>.jsonl` (one line per item:
prompt, output, extracted answer, gold, correct, reason) and `results.md` in the report's column layout.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from minimath.data.shards import atomic_write_bytes, atomic_write_json
from minimath.eval.answers import extract_answer, extract_choice, math_equal, numbers_equal
from minimath.eval.generation import GenerationConfig, generate, loglikelihoods
from minimath.eval.prompts import build_prompt
from minimath.eval.tasks import LETTERS, Doc, Task
from minimath.model import Transformer
from minimath.tokenizer import TokenizerLike

# The report's table: C-Eval, CMMLU, MMLU, GSM8K, MATH, MATH23K, and the average of the three math columns.
REPORT_COLUMNS = [("ceval", "C-Eval"), ("cmmlu", "CMMLU"), ("mmlu", "MMLU"), ("gsm8k", "GSM8K"), ("math", "MATH"),
                  ("math23k", "MATH23K")]
MATH_COLUMNS = ("gsm8k", "math", "math23k")


@dataclass
class Protocol:
    name: str  # standard | report
    shots: dict
    extraction: str  # auto | last_number
    subset: int | None
    seed: int
    generation: GenerationConfig
    batch_size: int = 16

    def shots_for(self, task: str) -> int:
        return int(self.shots.get(task, 0)) if self.name == "standard" else 0


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


def score_output(task: Task, doc: Doc, output: str, extraction: str) -> dict:
    """One item's verdict, with the reason when it is wrong."""
    if not output.strip():
        return {"extracted": None, "correct": False, "reason": "empty output"}
    if task.kind == "choice":
        extracted = extract_choice(output)
        correct = extracted == doc.gold
    else:
        method = "boxed" if task.kind == "math" and extraction == "auto" else extraction
        extracted = extract_answer(output, method)
        correct = (math_equal if task.kind == "math" else numbers_equal)(extracted, doc.gold)
    reason = "" if correct else ("no answer found" if extracted is None else "wrong answer")
    return {"extracted": extracted, "correct": bool(correct), "reason": reason}


def _choice_by_loglikelihood(model, tokenizer, prompt, doc: Doc) -> dict:
    context = tokenizer.encode(prompt.text)
    scores = loglikelihoods(model, [context] * len(prompt.choices), [tokenizer.encode(c) for c in prompt.choices])
    best = LETTERS[max(range(len(scores)), key=scores.__getitem__)]
    return {"output": best, "extracted": best, "correct": best == doc.gold, "loglikelihoods": scores,
            "reason": "" if best == doc.gold else "wrong answer"}


def run_task(model: Transformer, tokenizer: TokenizerLike, task: Task, protocol: Protocol) -> tuple[dict, list[dict]]:
    """Accuracy summary and per-item records of one task."""
    chosen = select(task.docs, protocol.subset, protocol.seed)
    k = protocol.shots_for(task.name)
    prompts = [build_prompt(task, doc, exemplars(task, doc, k, protocol.seed), protocol.name) for _, doc in chosen]
    records = []
    if task.kind == "choice" and protocol.name == "standard":
        for (doc_id, doc), prompt in zip(chosen, prompts):
            records.append({"doc_id": doc_id, "prompt": prompt.text, "gold": doc.gold,
                            **_choice_by_loglikelihood(model, tokenizer, prompt, doc)})
    else:
        for start in range(0, len(chosen), protocol.batch_size):
            batch = list(zip(chosen, prompts))[start:start + protocol.batch_size]
            stops = tuple(sorted({s for _, p in batch for s in p.stop}))
            cfg = GenerationConfig(**{**vars(protocol.generation), "stop": stops})
            outputs = generate(model, tokenizer, [tokenizer.encode(p.text) for _, p in batch], cfg)
            for ((doc_id, doc), prompt), output in zip(batch, outputs):
                records.append({"doc_id": doc_id, "prompt": prompt.text, "output": output, "gold": doc.gold,
                                **score_output(task, doc, output, protocol.extraction)})
    return summarize(task.name, records, protocol), records


def summarize(name: str, records: list[dict], protocol: Protocol | None = None) -> dict:
    n = len(records)
    summary = {"task": name, "n": n, "accuracy": sum(r["correct"] for r in records) / n if n else 0.0}
    if protocol is not None:
        summary["protocol"] = {"name": protocol.name, "shots": protocol.shots_for(name),
                               "extraction": protocol.extraction, "subset": protocol.subset, "seed": protocol.seed,
                               "generation": vars(protocol.generation)}
    return summary


def rescore(task: Task, predictions: list[dict], extraction: str = "auto") -> tuple[dict, list[dict]]:
    """Score saved outputs (`{"doc_id", "output"}` lines) against a task file; a missing doc_id counts wrong."""
    by_id: dict[int, str] = {}
    for p in predictions:
        by_id[int(p["doc_id"])] = str(p.get("output") or "")
    records = []
    for doc_id, doc in enumerate(task.docs):
        if doc_id not in by_id:
            records.append({"doc_id": doc_id, "gold": doc.gold, "output": None, "extracted": None, "correct": False,
                            "reason": "missing prediction"})
            continue
        records.append({"doc_id": doc_id, "gold": doc.gold, "output": by_id[doc_id],
                        **score_output(task, doc, by_id[doc_id], extraction)})
    return summarize(task.name, records), records


def markdown_table(summaries: dict[str, dict], model_name: str) -> str:
    """The report's columns (blank where a task was not run), then any other tasks."""
    cols = [(key, title) for key, title in REPORT_COLUMNS]
    extra = [(k, k) for k in summaries if k not in dict(REPORT_COLUMNS)]
    cell = lambda k: f"{100 * summaries[k]['accuracy']:.2f}" if k in summaries else "-"
    math = [100 * summaries[k]["accuracy"] for k in MATH_COLUMNS if k in summaries]
    head = ["model"] + [t for _, t in cols] + ["Math Avg."] + [t for _, t in extra]
    row = [model_name] + [cell(k) for k, _ in cols] + [f"{sum(math) / len(math):.2f}" if math else "-"] + \
        [cell(k) for k, _ in extra]
    return "\n".join(["|" + "|".join(head) + "|", "|" + "|".join("-" for _ in head) + "|", "|" + "|".join(row) + "|"])


def write_results(out_dir: Path, summaries: dict[str, dict], records: dict[str, list[dict]], model_name: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in records.items():
        atomic_write_bytes(out_dir / f"{name}.jsonl",
                           "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    atomic_write_json(out_dir / "results.json", {"model": model_name, "tasks": summaries})
    atomic_write_bytes(out_dir / "results.md", (markdown_table(summaries, model_name) + "\n").encode("utf-8"))
