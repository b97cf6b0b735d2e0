"""The evaluation sets that decontamination protects: benchmark tasks named from the task registry, or files listed
by hand. One `decontaminate:` block serves `minimath.data.prepare` (a data config's) and the synthesis verifier's
filter (conf/synthesize.yaml's `verify.decontaminate`):

    decontaminate:
      n: 13                            # n-gram length in units (words; CJK characters)
      tasks: all                       # names of conf/task/*.yaml or of a suite (jiuzhang); all: every benchmark task
      eval_root: ${paths.eval_root}    # where the tasks' files are, as for eval.py
      required: []                     # sets whose missing file is an error (all: every set)
      eval_sets: []                    # files listed by hand: [{name, path, fields: [question], format: jsonl}]

A task is read from the file its conf/task/<name>.yaml names (the split eval.py evaluates; a local file only, never
the hub) by the loader eval.py uses: its benchmark record turns each record of the published format into a `Doc`
and leaves out what the published evaluation leaves out. What is protected of an item is its benchmark's `protected`
text (`minimath.eval.benchmarks`): the question, with a multiple-choice item's lettered options (MMLU, C-Eval, CMMLU),
and TabMWP's table with its question and options. Held-out synthetic tasks are generated apart from training data
and have nothing to protect. A set whose file is missing is a counted, reported skip unless `required` names it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minimath.data.decontaminate import Decontaminator
from minimath.data.shards import sha256_file
from minimath.data.sources import FileSource, SourceStats
from minimath.errors import UserError
from minimath.eval.benchmarks import BENCHMARKS
from minimath.eval.tasks import local_docs, public_task_names, task_file_config, task_names

ALL = "all"


@dataclass(frozen=True)
class EvalSet:
    """One protected set: a registry task (`benchmark`: its format) or a file listed by hand (`fields`)."""

    name: str
    path: str  # a file or a glob
    benchmark: str | None = None
    fields: tuple[str, ...] = ()
    file_format: str = "jsonl"  # a listed file: jsonl | json

    @property
    def files(self) -> list[Path]:
        return [Path(p) for p in sorted(glob.glob(self.path))]

    def texts(self) -> list[str]:
        """The protected text of every item."""
        if self.benchmark is not None:
            protected = BENCHMARKS[self.benchmark].protected
            texts = [protected(doc) for doc in local_docs(self.benchmark, self.path)]
        else:
            texts = self._listed_texts()
        if not texts:
            raise UserError(f"evaluation set {self.name}: {self.path} holds no records to decontaminate against")
        return texts

    def _listed_texts(self) -> list[str]:
        source = FileSource(self.name, [self.path], format=self.file_format)
        stats = SourceStats(self.name)
        records = [rec for file in source.files() for rec, _ in source._records(file, stats)]
        return [str(r.get(f, "")) for r in records if isinstance(r, dict) for f in self.fields]


@dataclass(frozen=True)
class EvalSets:
    """The configured sets: those whose files are here, and the skipped ones (name -> the path that is missing)."""

    present: list[EvalSet] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def hashes(self) -> list[str]:
        """What the protected sets hold, for the fingerprint of what they decontaminate: each file's content hash
        with its set's name and format."""
        return [f"{s.name}:{s.benchmark or 'listed'}:{sha256_file(f)}" for s in self.present for f in s.files]


def skip_lines(skipped: dict[str, str]) -> list[str]:
    """The report of the skipped sets: how many, then one line for each naming the path that is missing."""
    if not skipped:
        return []
    return [f"decontamination: {len(skipped)} evaluation set(s) skipped, their files missing"] + [
        f"decontamination skipped {name}: no file {path} (put it there, or set paths.eval_root=DIR)"
        for name, path in skipped.items()
    ]


def _task_set(name: str, eval_root: Any) -> EvalSet:
    task = task_file_config(name, {"eval_root": eval_root})
    if "format" not in task:
        raise UserError(
            f"decontaminate.tasks: {name} is a held-out set generated apart from the training data; "
            f"name benchmark tasks ({', '.join(public_task_names())})"
        )
    return EvalSet(name, str(Path(str(task.path)).expanduser()), benchmark=str(task.format))


def _listed_set(item: Any) -> EvalSet:
    for key in ("name", "path", "fields"):
        if key not in item:
            raise UserError(f"decontaminate.eval_sets: {dict(item)} has no {key!r} (name, path, fields, format)")
    path = str(Path(str(item["path"])).expanduser())
    return EvalSet(str(item["name"]), path, fields=tuple(item["fields"]), file_format=str(item.get("format", "jsonl")))


def configured_sets(cfg: Any) -> list[EvalSet]:
    """The sets a `decontaminate:` block names: its registry tasks, then its listed files."""
    tasks = cfg.get("tasks")
    names = public_task_names() if tasks == ALL else task_names(tasks) if tasks else []
    if names and cfg.get("eval_root") is None:
        raise UserError(
            "decontaminate.tasks needs decontaminate.eval_root: where the tasks' files are (paths.eval_root)"
        )
    sets = [_task_set(name, cfg["eval_root"]) for name in names]
    sets += [_listed_set(item) for item in cfg.get("eval_sets") or []]
    seen: set[str] = set()
    for s in sets:
        if s.name in seen:
            raise UserError(f"decontaminate: evaluation set {s.name} is named twice (tasks and eval_sets)")
        seen.add(s.name)
    return sets


def resolve_eval_sets(cfg: Any) -> EvalSets:
    """The configured sets split into those present and those skipped; a required set that is missing is an error."""
    sets = configured_sets(cfg)
    required = cfg.get("required") or []
    required = {s.name for s in sets} if required == ALL else set(task_names(required))
    unknown = required - {s.name for s in sets}
    if unknown:
        raise UserError(f"decontaminate.required names {sorted(unknown)}, which tasks / eval_sets do not configure")
    present = [s for s in sets if s.files]
    skipped = {s.name: s.path for s in sets if not s.files}
    missing = [f"{name} ({path})" for name, path in skipped.items() if name in required]
    if missing:
        raise UserError(
            f"decontaminate: required evaluation set {', '.join(missing)} has no file: put it there, "
            f"or set paths.eval_root=DIR"
        )
    return EvalSets(present, skipped)


def build_decontaminator(sets: EvalSets, n: int, log=print) -> Decontaminator:
    """The n-gram index of every present set's protected texts (each set's size logged)."""
    decon = Decontaminator(n=n)
    for s in sets.present:
        items, short = decon.add_eval_texts(s.name, s.texts())
        alone = f"; {short:,} shorter than {n} units, matched only alone" if short else ""
        log(f"decontaminate against {s.name}: {items:,} items from {s.path}{alone}")
    return decon
