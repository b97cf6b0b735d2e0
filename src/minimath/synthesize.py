"""`python -m minimath.synthesize`: make training data with a teacher (conf/synthesize.yaml; groups `teacher/` and
`prompts/`). See `minimath.synthesis.pipeline` for what is written and how a rerun resumes.

    python -m minimath.synthesize teacher=oracle seeds.count=200 out=outputs/synthesis/oracle
    python -m minimath.synthesize teacher=checkpoint ckpt=outputs/kd/.../final.ckpt out=outputs/synthesis/small
    python -m minimath.synthesize teacher=openai teacher.client.base_url=http://host:8000/v1 teacher.client.model=M
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from minimath.config import CONF_DIR, run_entry_point
from minimath.errors import UserError, exit_on_user_error


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def build(node: DictConfig, **kwargs):
    """`hydra.utils.instantiate`, letting a `UserError` raised by the object's constructor (a missing key, a missing
    checkpoint) through as itself, so the entry point prints it as one line; Hydra wraps it otherwise."""
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def synthesize(cfg: DictConfig) -> dict:
    """Run the whole pipeline for a composed config; returns the manifest."""
    from minimath.io import atomic_write_json
    from minimath.synthesis import pipeline
    from minimath.synthesis.progress import SynthesisProgress
    from minimath.synthesis.prompts import PromptSet, choose_prompt, parse, render
    from minimath.synthesis.records import Sampling
    from minimath.synthesis.store import AnswerCache
    from minimath.synthesis.verify import verify_examples

    out = Path(str(cfg.out))
    style = str(cfg.teacher.style)
    if style not in ("chat", "compact"):
        raise UserError(f"teacher.style must be chat or compact, not {style!r}")
    prompt_set = PromptSet.from_config(cfg.prompts)
    teacher = build(cfg.teacher.client)  # a missing key or model stops here, before any request
    source = build(cfg.seeds.source, name=str(cfg.seeds.name))
    texts, source_stats, text_skips = pipeline.read_seed_texts(
        source,
        cfg.seeds.count,
        int(cfg.seeds.max_chars),
        pipeline.read_selection(cfg.seeds.selection),
        str(cfg.seeds.on_too_long),
    )
    if not texts:
        raise UserError(f"no seed texts from seeds.source ({source_stats}): check seeds.source / seeds.selection")
    sampling = Sampling(**OmegaConf.to_container(cfg.sampling, resolve=True))
    requests = pipeline.build_requests(
        texts, prompt_set, choose_prompt, render, int(cfg.samples_per_text), sampling, int(cfg.seed), style
    )
    cache = AnswerCache(Path(str(cfg.cache_dir)), flush_every=int(cfg.flush_every))
    for torn in cache.torn:
        print(f"answer cache: cut a torn last line ({torn}); that answer is asked again", file=sys.stderr)
    keys = [r.cache_key(teacher.backend, teacher.model) for r in requests]
    progress = SynthesisProgress(len(requests), sum(k in cache for k in keys), float(cfg.progress_every_seconds))
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        cost = pipeline.ask_teacher(
            teacher, requests, keys, cache, int(cfg.teacher.unit), bool(cfg.teacher.resend_unit), progress
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        cache.close()

    answers = [cache.get(k) for k in keys]
    parse_skips, status = pipeline.Tally(), {}
    templates = {t.id: t for t in prompt_set.templates}
    indexed = list(pipeline.parsed_examples(requests, answers, parse, templates, parse_skips))
    for i, a in enumerate(answers):
        status[i] = "parse failed" if a is not None else "not answered"
    kept, report = verify_examples([e for _, e in indexed], cfg.verify)
    kept_ids = {id(e) for e in kept}
    for i, e in indexed:
        status[i] = "kept" if id(e) in kept_ids else "filtered"
    by_index = {i: e for i, e in indexed if id(e) in kept_ids}
    data_rows = [
        {
            **by_index[i].training_pair(),
            "answer": by_index[i].answer,
            "prompt_id": by_index[i].prompt_id,
            "seed_id": by_index[i].seed_id,
            "text_hash": by_index[i].text_hash,
        }
        for i in sorted(by_index)
    ]
    text_of = {t.seed_id: t.text for t in texts}
    kd_rows = [
        {
            "input": pipeline.compact_prompt(e.prompt_id, text_of[e.seed_id]),
            "output": f"{e.problem.strip()}\n## Solution\n{e.solution.strip()}",
            "prompt_id": e.prompt_id,
            "seed_id": e.seed_id,
        }
        for _, e in sorted(by_index.items())
    ]
    shard = int(cfg.shard_rows)
    answered = sum(a is not None for a in answers)
    manifest = {
        "version": pipeline.MANIFEST_VERSION,
        "teacher": {
            "backend": teacher.backend,
            "model": teacher.model,
            "style": style,
            "stand_in": teacher.backend == "oracle",
            "settings": {
                k: v
                for k, v in OmegaConf.to_container(cfg.teacher.client, resolve=True).items()
                if k not in ("_target_", "prompts")
            },
        },
        "prompts": str(cfg.prompts.name),
        "sampling": sampling.to_dict(),
        "samples_per_text": int(cfg.samples_per_text),
        "seed": int(cfg.seed),
        "seeds": {
            "source": str(cfg.seeds.name),
            "texts": len(texts),
            "truncated": sum(t.truncated for t in texts),
            "source_stats": source_stats,
            "skipped": text_skips.to_dict(),
            "selection": None if not cfg.seeds.selection else str(cfg.seeds.selection),
        },
        "requests": len(requests),
        "answered": answered,
        "not_answered": len(requests) - answered,
        "parse": {"parsed": len(indexed), **parse_skips.to_dict()},
        "verify": report.to_dict(),
        "examples": len(data_rows),
        "data": pipeline.write_shards(out / "data", data_rows, shard),
        "kd": pipeline.write_shards(out / "kd", kd_rows, shard),
        "cost_this_run": cost,
        "tokens_total": {
            "in": sum(a["tokens_in"] for a in answers if a),
            "out": sum(a["tokens_out"] for a in answers if a),
        },
    }
    atomic_write_json(
        out / "requests.json", pipeline.request_rows(requests, answers, status, teacher.backend, teacher.model)
    )
    atomic_write_json(out / "manifest.json", manifest)
    print(
        f"synthesis: {len(requests):,} requests, {answered:,} answered, {len(indexed):,} parsed, "
        f"{len(data_rows):,} verified examples -> {out}/data ({out}/kd: instruction pairs; {out}/manifest.json)"
    )
    print(
        f"cost this run: {cost.get('calls', 0):,} calls, {cost.get('tokens_in', 0):,} tokens in, "
        f"{cost.get('tokens_out', 0):,} tokens out; failures: "
        + (", ".join(f"{k[8:]} ×{v}" for k, v in cost.items() if k.startswith("failed: ")) or "none")
    )
    if answered < len(requests):
        print(
            f"{len(requests) - answered:,} requests have no answer yet: rerun the same command to ask them again",
            file=sys.stderr,
        )
    return manifest


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="synthesize")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    synthesize(cfg)


if __name__ == "__main__":
    run_entry_point(main, "synthesize")
