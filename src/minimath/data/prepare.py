"""Prepare a dataset: read → clean → deduplicate → decontaminate → tokenize → pack into uint32 shards + manifest.

    python -m minimath.data.prepare data=<config>

Each source of `conf/data/<config>.yaml` becomes `<dir>/<source>-<fingerprint>_NNNNN.bin` shards and an entry
`<dir>/<source>-<fingerprint>.json`: its documents, tokens, shard hashes, skip counts, the token ids it uses (for
compact vocabularies) and the fingerprint of everything that produced it (its generator's seed included). Files are
named by content, so runs with other settings (`seed=7`) never share or overwrite each other's files, even at once;
a re-run reuses every source whose entry and shards exist. `manifest.json` lists the entries of the latest prepare.
Finally it writes the per-stage composition report (`composition.md` and one PNG chart per stage).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import signal
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from minimath.data.clean import Cleaner, normalize
from minimath.data.decontaminate import Decontaminator
from minimath.data.eval_sets import EvalSets, build_decontaminator, resolve_eval_sets, skip_lines
from minimath.data.pairs import Pair, PairSource, masked_prompt, normalize_pair
from minimath.data.shards import DTYPE, ID_MASK, MANIFEST, MANIFEST_VERSION, ShardWriter, load_shard, sha256_file
from minimath.data.sources import SourceStats
from minimath.errors import UserError, exit_on_user_error
from minimath.io import atomic_write_json
from minimath.log import quiet_third_party
from minimath.tokenizer import get_tokenizer

_worker_tokenizer = None


def _init_worker(tokenizer_name: str) -> None:
    # A forked worker inherits the parent's Python signal handlers (a training run's graceful-interrupt handler, or
    # one a library left installed): SIGTERM must end it, or `Pool.terminate` waits for it forever; Ctrl-C is the
    # parent's to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker_tokenizer
    _worker_tokenizer = get_tokenizer(tokenizer_name)


def _encode_batch(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All ids of a batch in one uint32 array plus document lengths: cheap to send between processes.
    Special-token strings inside a corpus stay text: a document must not be able to end itself early."""
    encoded = _worker_tokenizer.encoding.encode_ordinary_batch(texts, num_threads=1)
    lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
    flat = np.fromiter((i for ids in encoded for i in ids), dtype=DTYPE, count=int(lengths.sum()))
    return flat, lengths


def _batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _split(flat: np.ndarray, lengths: np.ndarray) -> Iterator[np.ndarray]:
    return iter(np.split(flat, np.cumsum(lengths)[:-1]))


def tokenize_stream(texts: Iterable[str], tokenizer_name: str, workers: int, batch: int = 256) -> Iterator[np.ndarray]:
    """Token ids (uint32 arrays) of each text, in order, using `workers` processes (1: in this process)."""
    if workers <= 1:
        _init_worker(tokenizer_name)
        for chunk in _batched(texts, batch):
            yield from _split(*_encode_batch(chunk))
        return
    with mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(tokenizer_name,)) as pool:
        for encoded in pool.imap(_encode_batch, _batched(texts, batch), chunksize=1):
            yield from _split(*encoded)


def tokenize_pairs(pairs: Iterable[Pair], tokenizer_name: str, workers: int, mask_prompt: bool) -> Iterator[np.ndarray]:
    """Each pair's prompt ids then output ids, the two parts encoded apart (as they are given at inference); with
    `mask_prompt` the prompt ids carry `NO_LOSS_BIT`."""
    parts = tokenize_stream((part for pair in pairs for part in pair), tokenizer_name, workers)
    for prompt in parts:
        yield np.concatenate([masked_prompt(prompt) if mask_prompt else prompt, next(parts)])


def describe_inputs(files: list[Path], recorded: dict) -> dict:
    """{path: {size, mtime_ns, sha256}} of a source's input files. The content hash is what counts; a file whose
    size and mtime match what the manifest recorded keeps its recorded hash instead of being read again."""
    described = {}
    for path in files:
        stat = path.stat()
        key, old = str(path.resolve()), recorded.get(str(path.resolve()), {})
        same = old.get("size") == stat.st_size and old.get("mtime_ns") == stat.st_mtime_ns and "sha256" in old
        described[key] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": old["sha256"] if same else sha256_file(path),
        }
    return described


def source_fingerprint(
    source_cfg: DictConfig, data_cfg: DictConfig, inputs: dict | None = None, eval_sets: list[str] | None = None
) -> str:
    """Everything that changes a source's shards: its config (a generator's settings), its input files' content,
    cleaning, decontamination (with its evaluation files' content) and tokenizer."""
    parts = {k: OmegaConf.to_container(data_cfg[k], resolve=True) for k in ("clean", "decontaminate")}
    parts["source"] = OmegaConf.to_container(source_cfg, resolve=True)
    parts["tokenizer"] = str(data_cfg.tokenizer)
    parts["inputs"] = {path: d["sha256"] for path, d in (inputs or {}).items()}
    parts["eval_sets"] = resolve_eval_sets(data_cfg.decontaminate).hashes() if eval_sets is None else eval_sets
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _finished(entry: dict | None, fingerprint: str, directory: Path) -> bool:
    if not entry or entry.get("fingerprint") != fingerprint:
        return False
    try:
        for shard in entry["shards"]:
            load_shard(directory, shard, verify_hash=True)
    except UserError:
        return False
    return True


def prepare_source(
    name: str, source, data_cfg: DictConfig, directory: Path, decon: Decontaminator, prefix: str
) -> dict:
    stats = SourceStats(name)
    cleaner = Cleaner(**OmegaConf.to_container(data_cfg.clean, resolve=True))
    pairs = isinstance(source, PairSource)
    removed = Counter()  # documents removed per evaluation set (one overlapping several counts for each)

    def kept_documents() -> Iterator[str | Pair]:
        for raw, where in source.documents(stats):
            document = normalize_pair(raw) if pairs else normalize(raw)
            text = document.text if pairs else document
            reason = cleaner.reason(text)
            if reason is None and (hits := decon.contaminated_by(text)):
                removed.update(hits)
                reason = f"overlaps evaluation set{'s' if len(hits) > 1 else ''} {', '.join(hits)}"
            if reason is not None:
                stats.skip(reason, where)
                continue
            stats.kept += 1
            yield document

    tokenizer = get_tokenizer(str(data_cfg.tokenizer))
    writer = ShardWriter(directory, prefix, tokenizer.eot_id, int(data_cfg.shard_tokens))
    used = np.zeros(tokenizer.vocab_size, dtype=bool)
    tokenize_args = (kept_documents(), str(data_cfg.tokenizer), int(data_cfg.workers))
    for ids in tokenize_pairs(*tokenize_args, source.mask_prompt) if pairs else tokenize_stream(*tokenize_args):
        used[ids & ID_MASK] = True
        writer.add(ids)
    writer.flush()
    if stats.kept == 0:
        raise UserError(f"source {name} produced no usable documents ({stats.summary()})")
    used[tokenizer.eot_id] = True
    entry = {
        "documents": stats.kept,
        "tokens": sum(s.tokens for s in writer.shards),
        "shards": [vars(s) for s in writer.shards],
        "stats": stats.to_dict(),
        "used_ids": np.flatnonzero(used).tolist(),
        "decontamination": {name: removed[name] for name in decon.names},
    }
    if pairs:  # synthesized pairs carry what made them (teacher, prompts) into the composition report
        entry["provenance"] = source.provenance()
    return entry


def decontamination_counts(eval_sets: EvalSets, entries: dict[str, dict]) -> dict:
    """The manifest's decontamination block: per protected set, its path and the documents removed from each source;
    the skipped sets with the path that is missing. Empty when the config names no set."""
    if not eval_sets.present and not eval_sets.skipped:
        return {}
    return {
        "sets": {
            s.name: {
                "path": s.path,
                "removed": {name: entry.get("decontamination", {}).get(s.name, 0) for name, entry in entries.items()},
            }
            for s in eval_sets.present
        },
        "skipped": dict(eval_sets.skipped),
    }


def decontamination_lines(counts: dict) -> list[str]:
    """One log line per protected set (documents removed, by source) and per skipped set."""
    lines = []
    for name, protected in counts.get("sets", {}).items():
        removed = {source: n for source, n in protected["removed"].items() if n}
        by_source = f" ({', '.join(f'{source} {n:,}' for source, n in removed.items())})" if removed else ""
        lines.append(f"decontamination {name}: removed {sum(removed.values()):,} document(s){by_source}")
    return lines + skip_lines(counts.get("skipped", {}))


def _entry(directory: Path, prefix: str) -> dict | None:
    path = directory / f"{prefix}.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None  # an entry that is not whole is prepared again (entries are written atomically)


def prepare(data_cfg: DictConfig, log=print, force: bool = False) -> dict:
    """Prepare every source of `data_cfg` under `data_cfg.dir` that has no entry for its fingerprint yet (`force`:
    every source); returns the manifest."""
    directory = Path(data_cfg.dir)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest = {
        "version": MANIFEST_VERSION,
        "name": str(data_cfg.name),
        "tokenizer": str(data_cfg.tokenizer),
        "sources": {},
    }
    decon, changed = None, False
    eval_sets = resolve_eval_sets(data_cfg.decontaminate)  # a required set that is missing stops here
    eval_hashes = eval_sets.hashes()
    for name, source_cfg in data_cfg.sources.items():
        recorded = old.get("sources", {}).get(name) or {}  # the last prepare's input-file stats, not to hash again
        source = hydra.utils.instantiate(source_cfg, name=name)
        files = source.input_files() if hasattr(source, "input_files") else []
        inputs = describe_inputs(files, recorded.get("inputs", {}))
        fingerprint = source_fingerprint(source_cfg, data_cfg, inputs, eval_hashes)
        prefix = f"{name}-{fingerprint}"
        previous = _entry(directory, prefix)
        if not force and _finished(previous, fingerprint, directory):
            manifest["sources"][name] = previous
            log(f"{name}: up to date ({previous['tokens']:,} tokens)")
            continue
        if force:
            log(f"{name}: preparing again (force=true)")
        elif recorded and inputs != recorded.get("inputs", {}):
            edited = sorted(
                set(inputs) ^ set(recorded.get("inputs", {}))
                | {p for p in inputs if recorded.get("inputs", {}).get(p, {}).get("sha256") != inputs[p]["sha256"]}
            )
            log(f"{name}: input changed ({', '.join(Path(p).name for p in edited[:3])}): preparing again")
        decon, changed = decon or build_decontaminator(eval_sets, int(data_cfg.decontaminate.n), log), True
        start = time.perf_counter()
        entry = prepare_source(name, source, data_cfg, directory, decon, prefix)
        entry["fingerprint"], entry["inputs"] = fingerprint, inputs
        atomic_write_json(directory / f"{prefix}.json", entry)  # progress survives a crash in a later source
        manifest["sources"][name] = entry
        stats = SourceStats(name, entry["stats"]["read"], entry["stats"]["kept"])
        stats.skipped.update(entry["stats"]["skipped"])
        stats.first_offender.update(entry["stats"]["first_offender"])
        log(
            f"{stats.summary()}; {entry['tokens']:,} tokens in {len(entry['shards'])} shard(s), "
            f"{time.perf_counter() - start:.1f}s"
        )
    manifest["decontamination"] = decontamination_counts(eval_sets, manifest["sources"])
    for line in decontamination_lines(manifest["decontamination"]):
        log(line)
    same = all(old.get(k) == manifest[k] for k in ("sources", "tokenizer"))
    if not changed and same and old.get("decontamination", {}) == manifest["decontamination"]:
        return old  # nothing to do: leave the files alone (other DDP ranks may be reading them)
    atomic_write_json(manifest_path, manifest)
    if "stages" in data_cfg:
        from minimath.data.composition import write_composition_report

        write_composition_report(data_cfg, manifest, directory)
    return manifest


@hydra.main(version_base="1.3", config_path="../../../conf", config_name="prepare")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    prepare(cfg.data, force=bool(cfg.force))


if __name__ == "__main__":
    main()
