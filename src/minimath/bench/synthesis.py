"""Synthesis throughput of the `checkpoint` teacher: generated tokens/s with batched requests against one request at
a time, side by side in one process (alternating repeats, median reported).

    python -m minimath.bench.synthesis [--ckpt PATH] [--requests 32] [--batch 1 16 32] [--new-tokens 64] [--repeats 3]

Without a checkpoint it times the `nano` shape (conf/model/nano.yaml, 512-token context) with random weights and a
compact vocabulary built from the seed texts; the prompts are the pipeline's compact prompts for generated math
texts, so the prompt lengths are the real ones.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time

import torch
from omegaconf import OmegaConf

from minimath.config import CONF_DIR
from minimath.data.synth.textbook import TextbookSource
from minimath.model import ModelConfig, Transformer
from minimath.synthesis.pipeline import compact_prompt
from minimath.synthesis.records import Request, Sampling, text_hash
from minimath.synthesis.teachers.local import CheckpointTeacher, checkpoint_teacher
from minimath.tokenizer import CompactTokenizer, get_tokenizer


def seed_texts(n: int) -> list[str]:
    rng = random.Random(0)
    return [t[:400] for t in itertools.islice(TextbookSource().documents(rng), n)]


def random_teacher(texts: list[str]) -> CheckpointTeacher:
    tokenizer = CompactTokenizer.from_corpus(
        get_tokenizer("qwen"), [compact_prompt("grade_school.en", t) for t in texts]
    )
    preset = OmegaConf.load(CONF_DIR / "model" / "nano.yaml")
    preset.max_seq_len = 512
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_preset(preset, vocab_size=tokenizer.vocab_size)).eval()
    return CheckpointTeacher(model, tokenizer, "nano (random weights)")


def timed(teacher: CheckpointTeacher, requests: list[Request]) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = sum(c.tokens_out for c in teacher.complete(requests))
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 32])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = seed_texts(args.requests)
    teacher = checkpoint_teacher(args.ckpt) if args.ckpt else random_teacher(texts)
    sampling = Sampling(temperature=0.0, max_tokens=args.new_tokens)
    requests = [
        Request(
            "grade_school.en", f"bench#{i}", text_hash(t), (("user", compact_prompt("grade_school.en", t)),), sampling
        )
        for i, t in enumerate(texts)
    ]
    print(
        f"checkpoint teacher: {teacher.model}, {sum(p.numel() for p in teacher.model_obj.parameters()):,} params, "
        f"{len(requests)} requests, {args.new_tokens} new tokens max, greedy, {torch.get_num_threads()} threads, "
        f"precision fp32"
    )
    rates: dict[int, list[float]] = {b: [] for b in args.batch}
    timed(teacher, requests[:2])  # warm-up
    for _ in range(args.repeats):
        for b in args.batch:
            teacher.batch_size = b
            seconds, tokens = timed(teacher, requests)
            rates[b].append(tokens / seconds)
    base = statistics.median(rates[args.batch[0]])
    for b in args.batch:
        med = statistics.median(rates[b])
        print(
            f"batch {b:>3}: median {med:,.0f} generated tokens/s ({', '.join(f'{r:,.0f}' for r in rates[b])}); "
            f"{med / base:.2f}x batch {args.batch[0]}"
        )


if __name__ == "__main__":
    main()
