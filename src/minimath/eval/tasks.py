"""Evaluation tasks: documents with gold answers, loaded from the public formats (local files, or the hub) or
generated as held-out synthetic sets. A malformed file is a one-line error naming the file and line."""

from __future__ import annotations

import csv
import dataclasses
import functools
import glob
import json
import os
import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from minimath.config import CONF_DIR
from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.data.synth.base import DocumentGenerator
from minimath.data.synth.equations import LinearEquationSource
from minimath.data.synth.word_problems import WordProblemSource
from minimath.errors import UserError, first_line
from minimath.eval.benchmarks import BENCHMARKS, SUITES
from minimath.eval.documents import Doc, Task
from minimath.jsonio import JsonRecordError, json_records


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{lineno}: malformed JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object")
        records.append(record)
    return records


def _read_json(path: Path) -> list[dict]:
    """A JSON array, concatenated objects (the original Math23k files), or one object of objects keyed by id
    (TabMWP's problems_test.json)."""
    try:
        records = list(json_records(path.read_text(encoding="utf-8")))
    except JsonRecordError as err:
        raise UserError(f"{path}:{err.line}: {err.message}") from None
    keyed = len(records) == 1 and isinstance(records[0], dict) and records[0]
    if keyed and all(isinstance(v, dict) for v in records[0].values()):
        return list(records[0].values())
    return records


def _read_csv(path: Path) -> list[dict]:
    """MMLU (no header: question,A,B,C,D,answer), C-Eval (id,question,A,B,C,D,answer,...), CMMLU (,Question,...)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise UserError(f"{path}: empty CSV file")
    header = [h.strip().lower() for h in rows[0]]
    if "question" in header and "answer" in header:
        return [
            {header[i]: v for i, v in enumerate(row) if i < len(header)} | {"_line": n}
            for n, row in enumerate(rows[1:], start=2)
        ]
    records = []
    for n, row in enumerate(rows, start=1):
        if len(row) < 6:
            raise UserError(f"{path}:{n}: expected question,A,B,C,D,answer")
        records.append(
            {"question": row[0], "a": row[1], "b": row[2], "c": row[3], "d": row[4], "answer": row[5], "_line": n}
        )
    return records


def read_records(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"evaluation file {path} does not exist")
    reader = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}.get(path.suffix)
    if reader is None:
        raise UserError(f"{path}: expected a .jsonl, .json or .csv file")
    return reader(path)


def hub_reachable() -> bool:
    """Whether the Hugging Face hub can be reached (HF_HUB_OFFLINE=1: no), so a missing local file fails at once
    offline instead of after the hub client's retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    return _hub_connects()


@functools.cache
def _hub_connects(timeout: float = 3.0) -> bool:
    """One short connect to the hub, made once per process."""
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_hub(hub: str, config: str | None, split: str) -> list[dict]:
    import datasets

    try:
        return [dict(r) for r in datasets.load_dataset(hub, name=config, split=split)]
    except Exception as err:  # network or dataset errors: one line, with the offline alternative
        raise UserError(f"cannot load {hub} ({first_line(err)}): set the task's path to a local file") from None


def _docs(fmt: str, records: list[dict], source: str, subject: str = "") -> list[Doc]:
    benchmark = BENCHMARKS[fmt]
    docs = [
        benchmark.load_doc(r, f"{source}:{r.get('_line', i + 1)}")
        for i, r in enumerate(records)
        if benchmark.skip is None or not benchmark.skip(r)
    ]
    for doc in docs:
        doc.subject = doc.subject or subject
    return docs


def _subject(path: str) -> str:
    """MMLU/C-Eval/CMMLU keep one subject per file: `abstract_algebra_test.csv` → `abstract_algebra`."""
    stem = Path(path).stem
    for suffix in ("_test", "_dev", "_val"):
        stem = stem.removesuffix(suffix)
    return stem


def local_docs(fmt: str, pattern: str) -> list[Doc]:
    """The documents of a benchmark's local files (`pattern`: a file, or a glob giving one subject per file)."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise UserError(f"evaluation file {pattern} does not exist")
    return [doc for f in files for doc in _docs(fmt, read_records(f), f, _subject(f) if "*" in pattern else "")]


def load_public_task(
    name: str,
    fmt: str,
    path: str | None = None,
    hub: str | None = None,
    hub_config: str | None = None,
    split: str = "test",
    fewshot_path: str | None = None,
    fewshot_split: str | None = "train",
) -> Task:
    """Local files when `path` matches (a glob gives one subject per file), else the hub id (online)."""
    if fmt not in BENCHMARKS:
        raise UserError(f"task {name}: unknown format {fmt!r}; choose one of {sorted(BENCHMARKS)}")
    benchmark = BENCHMARKS[fmt]
    local = bool(path) and bool(glob.glob(path))
    if not local and not hub:
        raise UserError(
            f"task {name}: evaluation file {path} does not exist (and no hub id is set): put it there, "
            f"or set paths.eval_root=DIR / task.path=FILE"
        )
    if not local and not hub_reachable():
        raise UserError(
            f"task {name}: no local file {path}, and the hub ({hub}) cannot be reached from here: put "
            f"the file there, or set paths.eval_root=DIR / task.path=FILE"
        )
    docs = local_docs(fmt, path) if local else _docs(fmt, load_hub(hub, hub_config, split), hub)
    if fewshot_path and glob.glob(fewshot_path):
        fewshot, source = local_docs(fmt, fewshot_path), fewshot_path
    elif hub and not local and fewshot_split:  # no few-shot split: the evaluated set is the whole dataset
        fewshot, source = _docs(fmt, load_hub(hub, hub_config, fewshot_split), hub), f"{hub}:{fewshot_split}"
    elif benchmark.fixed_fewshot is not None:
        fewshot, source = local_docs(fmt, str(benchmark.fixed_fewshot)), f"fixed:{benchmark.fixed_fewshot.name}"
    else:
        fewshot, source = [], "none"
    return Task(name, benchmark.kind, docs, fewshot, prompt_style=benchmark.prompt_style, fewshot_source=source)


TASK_DIR = CONF_DIR / "task"


def task_file_config(name: str, paths: Any) -> DictConfig:
    """The task registry's record of `name`: conf/task/<name>.yaml, its `${paths.eval_root}` resolved against
    `paths`."""
    path = TASK_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown task {name!r}; choose from {sorted(p.stem for p in TASK_DIR.glob('*.yaml'))}")
    return OmegaConf.merge({"paths": paths}, {"task": OmegaConf.load(path)}).task


def public_task_names() -> list[str]:
    """Every registered task read from a benchmark's files (conf/task/*.yaml with a `format`), not generated."""
    return sorted(p.stem for p in TASK_DIR.glob("*.yaml") if "format" in OmegaConf.load(p))


def task_names(tasks: str | list[str]) -> list[str]:
    """`tasks=[...]` as task names, in order and once each: a suite's name (`tasks=jiuzhang`, alone or in the list)
    stands for its tasks."""
    listed = [tasks] if isinstance(tasks, str) else list(tasks)
    return list(dict.fromkeys(t for name in listed for t in (SUITES[name].tasks if name in SUITES else [name])))


def heldout_generators(data_cfg: Any) -> dict[str, DocumentGenerator]:
    """The generators of the training sources a data config names for its held-out sets (`heldout:` maps each
    held-out task to a source's generator config)."""
    if "heldout" not in data_cfg:
        raise UserError(f"data config {data_cfg.get('name', '?')} names no held-out sets (heldout: {{task: source}})")
    return {name: as_generator(gen) for name, gen in data_cfg.heldout.items()}


def as_generator(generator: Any) -> DocumentGenerator:
    """A generator, from itself or from its config (`{_target_: ..., settings}`)."""
    import hydra

    return generator if isinstance(generator, DocumentGenerator) else hydra.utils.instantiate(generator)


# Bumped whenever what a held-out set holds or how it is scored changes, so stored evaluations (the curriculum's
# heldout.json) are recomputed rather than reused. 2: equations in every trained form (systems too), scored on the
# stated solution's every unknown, and reported per form.
HELDOUT_VERSION = 2

HELDOUT_SOURCES = {
    "arithmetic": ArithmeticSource,
    "equations": LinearEquationSource,
    "word_problems": WordProblemSource,
}


def heldout_task(name: str, n: int, generator: DocumentGenerator, seed: int = 0) -> Task:
    """`n` held-out items drawn by the training source's own generator (its settings: digits, number kinds,
    operators, forms, languages) from its held-out split, which training never produces. Arithmetic items carry
    their operator as `category`, and the heading a training document puts before its lines as `context`."""
    if name not in HELDOUT_SOURCES:
        raise UserError(f"unknown held-out task {name!r}: {', '.join(HELDOUT_SOURCES)}")
    if not isinstance(generator, HELDOUT_SOURCES[name]):
        raise UserError(
            f"held-out {name} needs a {HELDOUT_SOURCES[name].__name__} generator, "
            f"got {type(generator).__name__} (data config: heldout.{name})"
        )
    source = dataclasses.replace(generator, split="heldout")
    rng = random.Random(f"heldout-{name}-{seed}")
    if name == "arithmetic":

        def arithmetic_line(_: int) -> Doc:
            lang = rng.choice(source.languages)
            question, answer, _, kind, op = source.problem(rng)
            return Doc(f"{question} =", source.answer_text(answer, kind), category=op, context=source.heading(lang))

        quotas = operator_quotas(source.operators, n)
        return Task(name, "numeric", _distinct(name, n, arithmetic_line, quotas), prompt_style="line")
    if name == "equations":  # every trained form, systems included, in the training draw's proportions

        def equation(_: int) -> Doc:
            solved = source.problem(rng, rng.choice(source.languages))
            gold = ", ".join(f"{k} = {v}" for k, v in solved.answer.items())
            return Doc(solved.question, gold, category=solved.form)

        docs = _distinct(name, n, equation, operator_quotas(source.forms, n))
        return Task(name, "assignments", docs, prompt_style="equation")

    def word_problem(i: int) -> Doc:
        record = source.record(rng, i)
        return Doc(record["original_text"], record["ans"])

    return Task(name, "numeric", _distinct(name, n, word_problem), prompt_style="math23k")


def operator_quotas(operators: tuple[str, ...], n: int) -> dict[str, int]:
    """`n` items split over the operators (or an equation source's forms) in proportion to how often training draws
    each (the source draws uniformly from its list, so `[+, -, +, -, *, /]` is 2:2:1:1), by largest remainder."""
    exact = {op: n * operators.count(op) / len(operators) for op in dict.fromkeys(operators)}
    quotas = {op: int(share) for op, share in exact.items()}
    for op in sorted(exact, key=lambda o: quotas[o] - exact[o])[: n - sum(quotas.values())]:
        quotas[op] += 1
    return quotas


def _distinct(name: str, n: int, draw: Callable[[int], Doc], quotas: dict[str, int] | None = None) -> list[Doc]:
    """`n` held-out items with distinct questions (a repeated item would weigh twice in the accuracy), and with
    `quotas` exactly that many of each category: a category whose held-out space is small (2-digit subtraction
    holds ~100 problems) is not over-filled by the others."""
    category = (lambda doc: doc.category) if quotas else (lambda doc: "")
    quotas = quotas or {"": n}
    docs: dict[str, Doc] = {}
    left = dict(quotas)
    for attempt in range(50 * n):
        doc = draw(attempt)
        if left.get(category(doc), 0) > 0 and doc.question not in docs:
            docs[doc.question] = doc
            left[category(doc)] -= 1
        if len(docs) == n:
            return list(docs.values())
    short = ", ".join(f"{c}: {quotas[c] - k} of {quotas[c]}" for c, k in left.items() if k and c)
    raise UserError(
        f"held-out {name}: only {len(docs)} distinct items in {50 * n} draws"
        + (f" (missing {short})" if short else "")
        + f"; ask for fewer than {n}"
    )
