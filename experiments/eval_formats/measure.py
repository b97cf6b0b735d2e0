"""Check the answer scoring on benchmark files in their published formats: score predictions built from each item's
own gold answer (which must all count correct) and from the gold plus one (which must all count wrong) under both
protocols, through the same loaders and `rescore` that `eval.py mode=rescore` uses; and report the few-shot
exemplars the standard protocol puts in a 2,048-token context (MiniMATH-1.5B's) and in a 256-token one (nano's).

    python experiments/eval_formats/measure.py --task math23k=data/eval/math23k/test.json \\
        --task ape210k=data/eval/ape210k/test.ape.json --task gsm8k=data/eval/gsm8k/test.jsonl \\
        --task math=data/eval/MATH/test.jsonl --out experiments/eval_formats/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minimath.eval.answers import answer_value, is_percent
from minimath.eval.generation import GenerationConfig, new_token_budget
from minimath.eval.runner import Protocol, exemplars, fit_prompt, rescore
from minimath.eval.tasks import Doc, Task, load_public_task
from minimath.numbers import format_number
from minimath.tokenizer import get_tokenizer

NEW_TOKENS = 256
CONTEXTS = (2048, 256)  # MiniMATH-1.5B, nano
SHOTS = {"gsm8k": 8, "math23k": 5, "ape210k": 5, "math": 4}


def protocols() -> dict[str, Protocol]:
    """The two protocols of conf/protocol, over every item of the file (no subset)."""
    generation = GenerationConfig(max_new_tokens=NEW_TOKENS)
    return {
        "standard": Protocol("standard", SHOTS, "auto", None, 1234, generation),
        "report": Protocol("report", {}, "last_number", None, 1234, generation),
    }


def as_written(task: Task, doc: Doc) -> str:
    """An output that states the gold exactly as the dataset writes it, in the dataset's own answer format."""
    if task.name == "gsm8k":
        return f"{doc.solution}\n#### {doc.gold}"
    if task.kind == "math":
        return f"Final Answer: The final answer is $\\boxed{{{doc.gold}}}$. I hope it is correct."
    return f"答：{doc.gold}"


def off_by_one(task: Task, doc: Doc) -> str | None:
    """The same output with the gold plus one (a percentage plus one point); None when the gold is not a number."""
    value = answer_value(doc.gold)
    if value is None:
        return None
    wrong = f"{format_number(value * 100 + 1)}%" if is_percent(doc.gold) else format_number(value + 1)
    if task.kind == "math":
        return f"Final Answer: The final answer is ${wrong}$. I hope it is correct."
    return f"The answer is {wrong}." if task.name == "gsm8k" else f"答：{wrong}"


def shots_used(task: Task, k: int, context: int) -> dict:
    """Exemplars kept in the first 50 prompts when prompt + new tokens must fit `context` (new tokens: at most half
    the context, as `generation.new_token_budget`)."""
    tokenizer = get_tokenizer("qwen")
    room = context - new_token_budget(context, NEW_TOKENS)
    fitted = [
        fit_prompt(task, doc, exemplars(task, doc, k, 1234), "standard", tokenizer, room) for doc in task.docs[:50]
    ]
    return {
        "requested": k,
        "min": min(f.shots for f in fitted),
        "max": max(f.shots for f in fitted),
        "source": task.fewshot_source,
        "truncated": sum(f.truncated for f in fitted),
        "of": len(fitted),
    }


def measure(name: str, path: str) -> dict:
    task = load_public_task(name, name, path)
    row = {
        "task": name,
        "file": path,
        "n": len(task.docs),
        "shots": {str(c): shots_used(task, SHOTS[name], c) for c in CONTEXTS},
    }
    for label, build in (("as_written", as_written), ("off_by_one", off_by_one)):
        predictions = [
            {"doc_id": i, "output": out} for i, doc in enumerate(task.docs) if (out := build(task, doc)) is not None
        ]
        row[f"{label}_items"] = len(predictions)
        for protocol_name, protocol in protocols().items():
            summary, records = rescore(task, predictions, protocol)
            row[f"{label}_{protocol_name}"] = summary["accuracy"]
            row[f"{label}_{protocol_name}_failures"] = [
                {"doc_id": r["doc_id"], "gold": r["gold"], "output": r["output"], "extracted": r["extracted"]}
                for r in records
                if r["correct"] != (label == "as_written")
            ][:10]
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| task | items | gold as written: standard | report | gold + 1 (numeric golds): standard | report | "
        "shots used, 2,048 / 256-token context | exemplars |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def pct(x):
        return f"{100 * x:.2f}%"

    def shots(s):
        return f"{s['min']}–{s['max']} of {s['requested']}" + (
            f" ({s['truncated']} truncated)" if s["truncated"] else ""
        )

    for r in rows:
        s = r["shots"]
        lines.append(
            f"| {r['task']} | {r['n']:,} | {pct(r['as_written_standard'])} | {pct(r['as_written_report'])} | "
            f"{pct(r['off_by_one_standard'])} | {pct(r['off_by_one_report'])} ({r['off_by_one_items']:,} "
            f"items) | {shots(s['2048'])} / {shots(s['256'])} | {s['2048']['source']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", required=True, help="NAME=PATH (gsm8k, math23k, ape210k, math)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = [measure(*spec.split("=", 1)) for spec in args.task]
    print(table(rows))
    for r in rows:
        for key in ("as_written_standard", "as_written_report", "off_by_one_standard", "off_by_one_report"):
            for failure in r[f"{key}_failures"]:
                print(f"{r['task']} {key}: {json.dumps(failure, ensure_ascii=False)}")
    if args.out:
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
