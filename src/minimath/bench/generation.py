"""Generation benchmark: tokens/s with the KV cache against re-running the whole prefix for every token.

    python -m minimath.bench.generation [--ckpt PATH] [--batch 8] [--new-tokens 120] [--prompt-tokens 8]

Without a checkpoint it times the `nano` shape (conf/model/nano.yaml) with random weights; both decoders are
greedy, produce the same tokens (checked), and run side by side in one process.
"""

from __future__ import annotations

import argparse
import time

import torch
from omegaconf import OmegaConf

from minimath.config import CONF_DIR
from minimath.eval.generation import GenerationConfig, generate, generate_without_cache, load_for_inference
from minimath.log import quiet_third_party
from minimath.model import ModelConfig, Transformer


class _IdTokenizer:
    """Decodes ids as text so random-weight generations can be compared."""

    def __init__(self, vocab_size: int):
        self.vocab_size, self.eot_id, self.name = vocab_size, -1, "ids"

    def decode(self, ids):
        return " ".join(map(str, ids))


def nano_model(vocab_size: int = 256) -> Transformer:
    preset = OmegaConf.load(CONF_DIR / "model" / "nano.yaml")
    torch.manual_seed(0)
    return Transformer(ModelConfig.from_preset(preset, vocab_size=vocab_size)).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=120)
    parser.add_argument("--prompt-tokens", type=int, default=8)
    args = parser.parse_args()
    quiet_third_party()
    if args.ckpt:
        model, tokenizer = load_for_inference(args.ckpt)
    else:
        model = nano_model()
        tokenizer = _IdTokenizer(model.config.vocab_size)
    torch.set_num_threads(torch.get_num_threads())
    g = torch.Generator().manual_seed(1)
    prompts = [
        torch.randint(0, tokenizer.vocab_size, (args.prompt_tokens,), generator=g).tolist() for _ in range(args.batch)
    ]
    cfg = GenerationConfig(max_new_tokens=args.new_tokens, stop_at_eot=False)

    start = time.perf_counter()
    cached = generate(model, tokenizer, prompts, cfg)
    t_cache = time.perf_counter() - start
    start = time.perf_counter()
    single = [generate(model, tokenizer, [p], cfg)[0] for p in prompts]
    t_single = time.perf_counter() - start
    start = time.perf_counter()
    reference = [generate_without_cache(model, tokenizer, p, cfg) for p in prompts]
    t_ref = time.perf_counter() - start
    assert cached == reference == single, "KV-cache decoding differs from re-forward decoding"
    n = sum(len(text.split()) for text in cached)
    print(
        f"model: {sum(p.numel() for p in model.parameters()):,} params, max_seq_len {model.config.max_seq_len}; "
        f"{args.batch} prompts × {args.prompt_tokens} tokens, {n // args.batch} new tokens each"
    )
    print(f"kv-cache, batch {args.batch}: {n / t_cache:,.0f} tokens/s ({t_cache:.2f}s)")
    print(f"kv-cache, one prompt at a time: {n / t_single:,.0f} tokens/s ({t_single:.2f}s)")
    print(f"re-forward, one prompt at a time: {n / t_ref:,.0f} tokens/s ({t_ref:.2f}s)")
    print(
        f"speed-up over re-forward: {t_ref / t_single:.1f}x from the cache alone, {t_ref / t_cache:.1f}x "
        f"with batching (identical tokens)"
    )


if __name__ == "__main__":
    main()
