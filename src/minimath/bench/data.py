"""Data pipeline benchmark: tokenize+pack throughput and the dataloader's share of training-step time.

    python -m minimath.bench.data [--documents N] [--steps N] [--workers 1 2]

1. Tokenize+pack: a mixed Chinese/English corpus (generated general text, textbook text and word problems with
   chain-of-thought) through the same code `prepare` uses (`tokenize_stream` + `ShardWriter`), timed per worker
   count; tokens/s/core = tokens/s ÷ worker processes.
2. Loader wait: the nano model trains on the embedded stage-3 mixture; Lightning's SimpleProfiler times
   `train_dataloader_next` against the whole training-batch time.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from minimath.config import CONF_DIR
from minimath.data.clean import normalize
from minimath.data.prepare import tokenize_stream
from minimath.data.shards import ShardWriter
from minimath.data.synth.general import GeneralTextSource
from minimath.data.synth.textbook import TextbookSource
from minimath.data.synth.word_problems import WordProblemSource
from minimath.log import quiet_third_party
from minimath.tokenizer import get_tokenizer


def mixed_corpus(documents: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    generators = [
        GeneralTextSource(languages=("en",)),
        GeneralTextSource(languages=("zh",)),
        TextbookSource(),
        WordProblemSource(),
    ]
    return [normalize(generators[i % len(generators)].document(rng)) for i in range(documents)]


def tokenize_pack_throughput(texts: list[str], workers: int) -> tuple[int, float]:
    eot = get_tokenizer("qwen").eot_id
    with tempfile.TemporaryDirectory() as tmp:
        writer = ShardWriter(Path(tmp), "bench", eot, shard_tokens=1 << 22)
        start = time.perf_counter()
        for ids in tokenize_stream(texts, "qwen", workers):
            writer.add(ids)
        writer.flush()
        elapsed = time.perf_counter() - start
    return sum(s.tokens for s in writer.shards), elapsed


def loader_wait_share(steps: int, data_root: str) -> tuple[float, float, int]:
    """(dataloader wait seconds, training-batch seconds, steps) for the nano model on embedded stage 3."""
    import lightning as L
    from hydra import compose, initialize_config_dir
    from lightning.pytorch.profilers import SimpleProfiler
    from omegaconf import OmegaConf

    from minimath.lit_module import MiniMathModule, module_hparams
    from minimath.schema import register_configs
    from minimath.training import build_datamodule, build_model_config, build_tokenizer, prepare

    register_configs()  # the training config's schema, as train.py registers it
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["stage=3", f"paths.data_root={data_root}"])
    manifest = prepare(cfg.data, log=lambda *_: None)
    tokenizer = build_tokenizer(cfg.model, manifest)
    datamodule = build_datamodule(cfg, manifest, tokenizer)
    module = MiniMathModule(
        **module_hparams(
            build_model_config(cfg.model, tokenizer),
            OmegaConf.to_container(cfg.optim, resolve=True),
            tokenizer.state_dict(),
        )
    )
    profiler = SimpleProfiler(dirpath=tempfile.mkdtemp(), filename="profile")  # the table goes to a file
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        profiler=profiler,
    )
    trainer.fit(module, datamodule=datamodule)
    durations = profiler.recorded_durations
    wait = sum(sum(v) for k, v in durations.items() if k.endswith("train_dataloader_next"))
    batch = sum(sum(v) for k, v in durations.items() if k.endswith("run_training_batch"))
    return wait, batch + wait, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per worker count (median and best)")
    parser.add_argument("--data-root", default="data/prepared")
    args = parser.parse_args()
    quiet_third_party()

    texts = mixed_corpus(args.documents)
    chars = sum(len(t) for t in texts)
    zh = sum(1 for t in texts if any("\u4e00" <= c <= "\u9fff" for c in t))
    print(f"corpus: {len(texts)} documents, {chars / 1e6:.1f}M characters, {zh / len(texts):.0%} Chinese documents")
    for workers in args.workers:
        runs = [tokenize_pack_throughput(texts, workers) for _ in range(args.repeats)]
        tokens = runs[0][0]
        rates = sorted(tokens / elapsed for _, elapsed in runs)
        median, best = rates[len(rates) // 2], rates[-1]
        print(
            f"tokenize+pack workers={workers}: {tokens:,} tokens; median {median:,.0f} tokens/s = "
            f"{median / workers:,.0f} tokens/s/core (best {best / workers:,.0f}/core, {args.repeats} runs)"
        )
    wait, total, steps = loader_wait_share(args.steps, args.data_root)
    print(
        f"loader wait (nano, embedded stage 3, {steps} steps): {wait:.3f}s of {total:.2f}s = {wait / total:.2%} "
        f"of step time"
    )


if __name__ == "__main__":
    main()
