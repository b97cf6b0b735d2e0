"""Generation through `eval.py ckpt=hf:DIR` against `eval.py ckpt=PATH` on the same tiny model: tokens/s of each and
their ratio, side by side in one process (alternating repeats, median reported).

    python -m minimath.bench.hf_generation [--batch 1 8] [--new-tokens 64] [--prompt-tokens 32] [--repeats 3]

It writes a checkpoint of the `nano` shape (conf/model/nano.yaml) with random weights over a compact vocabulary of
generated math texts, exports it (`minimath.export`, fp32), loads each as eval.py does (`eval.modes.load_model`, then
the `LanguageModel` a task calls: ours with its KV cache, transformers' `generate` with its own) and times the same
greedy generation of the same prompt ids. Continuations run to their full length (no end-of-text stop), so both
paths produce batch × new tokens; how many continuations agree is printed beside the rates.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers
from omegaconf import OmegaConf

from minimath.bench.synthesis import seed_texts
from minimath.checkpoint import AtomicCheckpointIO
from minimath.config import CONF_DIR
from minimath.eval.generation import GenerationConfig
from minimath.eval.modes import load_model
from minimath.eval.runner import LanguageModel, language_model
from minimath.export import export
from minimath.hardware import machine_facts
from minimath.lit_module import module_hparams
from minimath.log import quiet_third_party
from minimath.model import ModelConfig, Transformer
from minimath.tokenizer import CompactTokenizer, get_tokenizer


def write_random_checkpoint(path: Path, texts: list[str]) -> Path:
    """A `train.py`-shaped checkpoint of the nano preset with random weights, its vocabulary compacted to `texts`."""
    tokenizer = CompactTokenizer.from_corpus(get_tokenizer("qwen"), texts)
    preset = OmegaConf.load(CONF_DIR / "model" / "nano.yaml")
    torch.manual_seed(0)
    config = ModelConfig.from_preset(preset, vocab_size=tokenizer.vocab_size)
    model = Transformer(config)
    ckpt = {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": module_hparams(config, {"lr": float(preset.lr)}, tokenizer.state_dict()),
    }
    AtomicCheckpointIO().save_checkpoint(ckpt, path)
    return path


def timed(lm: LanguageModel, prompts: list[list[int]], cfg: GenerationConfig) -> tuple[float, list[str]]:
    start = time.perf_counter()
    texts = lm.generate(prompts, cfg)
    return time.perf_counter() - start, texts


def describe(module: torch.nn.Module) -> str:
    parameter = next(module.parameters())
    return f"{sum(p.numel() for p in module.parameters()):,} params, {parameter.device.type}, {parameter.dtype}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    quiet_third_party()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = seed_texts(max(args.batch))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_random_checkpoint(Path(tmp) / "nano.ckpt", texts)
        hf_dir = export(ckpt, Path(tmp) / "nano-hf")
        paths = {f"ckpt={ckpt.name}": str(ckpt), f"ckpt=hf:{hf_dir.name}": f"hf:{hf_dir}"}
        loaded = {label: load_model(spec) for label, spec in paths.items()}  # as eval.py resolves ckpt=
        models = {label: language_model(m.model, m.tokenizer) for label, m in loaded.items()}
        native = loaded[f"ckpt={ckpt.name}"]
        prompts = [native.tokenizer.encode(t)[: args.prompt_tokens] for t in texts]  # the same ids for both
        cfg = GenerationConfig(max_new_tokens=args.new_tokens, stop_at_eot=False)
        facts = machine_facts()
        print(
            f"{facts['cpu']}, {facts['threads']} threads, torch {facts['torch']}, transformers "
            f"{transformers.__version__}; greedy, {args.new_tokens} new tokens per prompt of {args.prompt_tokens}, "
            f"median and best of {args.repeats} alternating repeats"
        )
        for label, lm in models.items():
            print(f"{label}: {type(lm).__name__}, {describe(lm.model)}")
        for batch in args.batch:
            rates: dict[str, list[float]] = {label: [] for label in models}
            for lm in models.values():
                timed(lm, prompts[:batch], cfg)  # warm-up
            for _ in range(args.repeats):
                outputs = {}
                for label, lm in models.items():
                    seconds, outputs[label] = timed(lm, prompts[:batch], cfg)
                    rates[label].append(batch * args.new_tokens / seconds)
            medians, bests = [statistics.median(r) for r in rates.values()], [max(r) for r in rates.values()]
            same = sum(a == b for a, b in zip(*outputs.values()))
            print(
                f"batch {batch}: "
                + ", ".join(f"{label} {statistics.median(r):,.0f} (best {max(r):,.0f})" for label, r in rates.items())
                + f" tokens/s; hf / ours {medians[1] / medians[0]:.2f}x (best {bests[1] / bests[0]:.2f}x); "
                f"identical continuations {same} of {batch}"
            )


if __name__ == "__main__":
    main()
