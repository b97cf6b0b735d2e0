"""Data synthesis, JiuZhang3.0's way: seed texts → one request per (text, sample) under a prompt chosen per text by
a seeded mix → a teacher → parsed (problem, solution, answer) → verified → jsonl shards and a manifest.

Two datasets come out of one run:
- `data/`: the verified examples as pre-training pairs (`{"input": "## Question\\n…\\n## Solution\\n", "output":
  …}`, JiuZhang3.0's released format), a source any stage's mixture can name;
- `kd/`: the same verified answers as instruction pairs for training a small synthesis model — the input is the
  compact prompt a small model is later asked with (`compact_prompt`), the output the teacher's problem and
  solution — so the synthesis model learns only from answers that passed verification.

Resumable by construction: answers live in the answer cache (`minimath.synthesis.store`) the moment they arrive,
the request list is a pure function of the config, and the datasets are written from the cache in request order at
the end, so an interrupted run (SIGINT, SIGTERM, SIGKILL) rerun with the same command pays only for what is missing
and writes the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from minimath.errors import Interrupted, UserError
from minimath.io import atomic_write, jsonl_bytes
from minimath.synthesis.progress import SynthesisProgress
from minimath.synthesis.records import Example, Request, Sampling, Teacher, text_hash
from minimath.synthesis.store import AnswerCache

MANIFEST_VERSION = 1


def compact_prompt(prompt_id: str, text: str) -> str:
    """What a small synthesis model is asked (and trained on): the prompt's id and the seed text, then the start of
    the answer. Short, because a CPU-scale model's whole context is a few hundred tokens; the long teacher prompts
    are for teachers."""
    return f"<{prompt_id}>\n{text.strip()}\n## Question\n"


@dataclass
class SeedText:
    seed_id: str
    text: str
    truncated: bool = False


@dataclass
class Tally:
    """Counted skips with the first offender of each reason (nothing is dropped silently)."""

    counts: Counter = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, where: str) -> None:
        self.counts[reason] += 1
        self.first.setdefault(reason, where)

    def to_dict(self) -> dict:
        return {"counts": dict(sorted(self.counts.items())), "first_offender": dict(sorted(self.first.items()))}


def read_seed_texts(
    source, max_texts: int | None, max_chars: int, selection: set[str] | None, on_truncate: str
) -> tuple[list[SeedText], dict, Tally]:
    """Seed texts from any data-config source (`documents(stats)`), optionally only those a selection file names
    (by seed id or text hash); a text longer than `max_chars` is truncated (`on_truncate: truncate`, recorded) or
    skipped (`skip`, counted)."""
    from minimath.data.sources import SourceStats

    stats, skipped, texts = SourceStats(source.name), Tally(), []
    for raw, where in source.documents(stats):
        text = raw.strip()
        if not text:
            skipped.add("empty text", where)
            continue
        named = {where, text_hash(text), text_hash(text[:max_chars])}  # by id, or the text's hash (as read or cut)
        if selection is not None and not named & selection:
            continue
        truncated = len(text) > max_chars
        if truncated and on_truncate == "skip":
            skipped.add(f"longer than {max_chars} characters", where)
            continue
        stats.kept += 1
        texts.append(SeedText(where, text[:max_chars], truncated))
        if max_texts is not None and len(texts) >= max_texts:
            break
    return texts, stats.to_dict(), skipped


def read_selection(path: str | None) -> set[str] | None:
    """A selection file (`python -m minimath.select` writes one): jsonl records with `id` (a seed id) or
    `text_hash`; None: every text."""
    if not path:
        return None
    file = Path(str(path))
    if not file.is_file():
        raise UserError(
            f"seeds.selection={file} does not exist: pass the selected.jsonl that python -m minimath.select wrote"
        )
    chosen = set()
    for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            chosen.add(str(record.get("id") or record["text_hash"]))
        except (json.JSONDecodeError, KeyError, AttributeError):
            raise UserError(f"{file}:{lineno}: not a selection record (a JSON object with id or text_hash)") from None
    return chosen


def build_requests(
    texts: list[SeedText], prompt_set, choose, render: Callable, samples: int, sampling: Sampling, seed: int, style: str
) -> list[Request]:
    """One request per (text, sample index), in text order; the prompt is chosen per text by the seeded mix (the
    same text gets the same prompt whatever else the run holds). `style`: `chat` (the prompt set's teacher messages)
    or `compact` (`compact_prompt`, for a small synthesis model)."""
    requests = []
    for t in texts:
        template = choose(prompt_set, t.seed_id, seed)
        if style == "compact":
            messages = (("user", compact_prompt(template.id, t.text)),)
        else:
            messages = render(template, t.text)
        for s in range(samples):
            requests.append(
                Request(
                    prompt_id=template.id,
                    seed_id=t.seed_id,
                    text_hash=text_hash(t.text),
                    messages=tuple(messages),
                    sampling=sampling,
                    sample_index=s,
                )
            )
    return requests


def units(requests: list, size: int) -> list[list]:
    """Fixed groups of consecutive requests: a local teacher answers a unit as one batch, and a resumed run sends
    the same unit again, so batch composition (and with it every answer) is the same as in an uninterrupted run."""
    return [requests[i : i + size] for i in range(0, len(requests), size)]


def to_send(group: list[Request], keys: list[str], cache: AnswerCache, resend_unit: bool) -> list[Request]:
    missing = [r for r, k in zip(group, keys) if k not in cache]
    return (group if resend_unit else missing) if missing else []


def ask_teacher(
    teacher: Teacher,
    requests: list[Request],
    keys: list[str],
    cache: AnswerCache,
    unit_size: int,
    resend_unit: bool,
    progress: SynthesisProgress,
) -> dict:
    """Send every request without a cached answer (`keys`: each request's cache key); answers are cached as they
    arrive. Returns this run's cost."""
    cost = Counter()
    key_of = dict(zip(requests, keys))
    try:
        for group, group_keys in zip(units(requests, unit_size), units(keys, unit_size)):
            send = to_send(group, group_keys, cache, resend_unit)
            if not send:
                continue
            for completion in teacher.complete(send):
                key = key_of[completion.request]
                cost["calls"] += 1
                if not completion.ok:
                    cost[f"failed: {completion.failure}"] += 1
                    progress.add(False, failure=completion.failure)
                    continue
                if key in cache:  # a resent unit's member that was already answered
                    continue
                cache.put(key, completion)
                cost["tokens_in"] += completion.tokens_in
                cost["tokens_out"] += completion.tokens_out
                progress.add(True, completion.tokens_in, completion.tokens_out)
            cache.flush()
    except KeyboardInterrupt:
        progress.end_line()
        cache.close()
        raise Interrupted(
            f"synthesis stopped with {progress.done:,} of {progress.total:,} answers cached; rerun the "
            f"same command to continue (nothing answered is asked again)"
        ) from None
    except UserError:
        progress.end_line()
        cache.close()
        raise
    progress.show(final=True)
    return dict(cost)


def write_shards(directory: Path, rows: list[dict], shard_size: int) -> list[dict]:
    """Rows as `part-<n>.jsonl` shards (each written atomically), described by file, rows and sha256; shards of an
    earlier run that this one does not write are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    described, names = [], set()
    for n, start in enumerate(range(0, max(len(rows), 1), shard_size)):
        data = jsonl_bytes(rows[start : start + shard_size])
        name = f"part-{n:05d}.jsonl"
        atomic_write(directory / name, lambda f, d=data: f.write(d))
        names.add(name)
        described.append(
            {"file": name, "rows": len(rows[start : start + shard_size]), "sha256": hashlib.sha256(data).hexdigest()}
        )
    for stale in directory.glob("part-*.jsonl"):
        if stale.name not in names:
            stale.unlink()
    return described


def parsed_examples(
    requests: list[Request], answers: list[dict | None], parse: Callable, templates: dict, tally: Tally
) -> Iterator[tuple[int, Example]]:
    """(request index, Example) for each answered request whose answer parses; a parse failure is counted with its
    first offender (the request's seed id and prompt id)."""
    from minimath.synthesis.prompts import ParseFailure

    for i, (request, answer) in enumerate(zip(requests, answers)):
        if answer is None:
            continue
        try:
            example = parse(
                answer["text"], templates[request.prompt_id], seed_id=request.seed_id, text_hash=request.text_hash
            )
        except ParseFailure as err:
            tally.add(err.reason, f"{request.seed_id} ({request.prompt_id}, sample {request.sample_index})")
            continue
        yield i, example


def request_rows(
    requests: list[Request], answers: list[dict | None], status: dict[int, str], backend: str, model: str
) -> list[dict]:
    rows = []
    for i, (r, a) in enumerate(zip(requests, answers)):
        rows.append(
            {
                "prompt_id": r.prompt_id,
                "seed_id": r.seed_id,
                "text_hash": r.text_hash,
                "sample": r.sample_index,
                "backend": backend,
                "model": model,
                "sampling": r.sampling.to_dict(),
                "tokens_in": a["tokens_in"] if a else 0,
                "tokens_out": a["tokens_out"] if a else 0,
                "seconds": round(a["seconds"], 4) if a else None,
                "status": status.get(i, "not answered"),
            }
        )
    return rows
