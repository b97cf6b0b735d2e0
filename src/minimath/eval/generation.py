"""Decoding and scoring with a trained model: batched generation with a KV cache and stop strings, a
re-forward reference decoder, log-likelihoods of continuations, and loading a checkpoint for inference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from minimath.checkpoint import load_checkpoint, load_weights, model_state
from minimath.errors import UserError
from minimath.model import KVCache, ModelConfig, Transformer
from minimath.tokenizer import TokenizerLike, tokenizer_from_state


def load_for_inference(path: str | Path) -> tuple[Transformer, TokenizerLike]:
    """The model and tokenizer a `train.py` checkpoint was trained with (loaded with weights_only=True)."""
    return inference_objects(load_checkpoint(path), path)


def inference_objects(ckpt: dict, path: str | Path) -> tuple[Transformer, TokenizerLike]:
    """The model (in eval mode) and tokenizer of an already loaded checkpoint read from `path`."""
    hparams = ckpt["hyper_parameters"]
    try:
        model = Transformer(ModelConfig(**hparams["model"]))
        tokenizer = tokenizer_from_state(hparams["tokenizer"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path} does not describe a MiniMATH model ({err})") from None
    load_weights(model, model_state(ckpt), str(path))
    return model.eval(), tokenizer


@dataclass
class GenerationConfig:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # stop when the generated text contains one of these (it is cut off)
    stop_kept: tuple[str, ...] = ()  # stop after one of these, which stays in the text (protocol=tool's code fence)
    stop_at_eot: bool = True
    seed: int = 0


def new_token_budget(max_seq_len: int, max_new: int) -> int:
    """New tokens a model of this context can produce: at most half its context, so a prompt always fits."""
    return max(1, min(max_new, max_seq_len // 2))


def _fit_prompts(prompts: Sequence[list[int]], max_seq_len: int, max_new: int) -> list[list[int]]:
    """Left-truncate prompts (keep their end, as lm-evaluation-harness does) so prompt + new tokens fit."""
    if any(len(p) == 0 for p in prompts):
        raise UserError("empty prompt")
    room = max_seq_len - max_new
    return [list(p[-room:]) for p in prompts]


def _vocab_logits(logits: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Padding rows of the embedding (past the tokenizer's vocabulary) are never generated."""
    return logits[..., :vocab_size]


def _next_tokens(logits: torch.Tensor, cfg: GenerationConfig, generator: torch.Generator | None) -> torch.Tensor:
    if cfg.temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / cfg.temperature, -1)
    if cfg.top_p < 1.0:
        sorted_probs, order = probs.sort(-1, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < cfg.top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _cut_at_stop(text: str, stops: Sequence[str], kept: Sequence[str] = ()) -> tuple[str, bool]:
    """The text up to the first stop string in it (a kept one stays in the text), and whether there was one."""
    found = [(text.index(s), s in kept, s) for s in (*stops, *kept) if s in text]
    if not found:
        return text, False
    start, keep, stop = min(found)
    return text[: start + len(stop) * keep], True


def generate(
    model: Transformer, tokenizer: TokenizerLike, prompts: Sequence[list[int]], cfg: GenerationConfig
) -> list[str]:
    """Continuations of a batch of prompts, decoded with a KV cache (prefill once, then one token per step)."""
    return [text for text, _ in generate_counted(model, tokenizer, prompts, cfg)]


@torch.no_grad()
def generate_counted(
    model: Transformer, tokenizer: TokenizerLike, prompts: Sequence[list[int]], cfg: GenerationConfig
) -> list[tuple[str, int]]:
    """`generate`, with the number of new tokens each continuation took (a synthesis teacher reports it)."""
    max_new = new_token_budget(model.config.max_seq_len, cfg.max_new_tokens)
    prompts = _fit_prompts(prompts, model.config.max_seq_len, max_new)
    device = model.output_weight.device
    b, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.zeros(b, width, dtype=torch.long, device=device)
    valid = torch.zeros(b, width + max_new, dtype=torch.bool, device=device)
    for i, p in enumerate(prompts):  # left padding: every prompt ends at the same column
        ids[i, width - len(p) :] = torch.tensor(p, device=device)
        valid[i, width - len(p) : width + max_new] = True
    positions = (valid[:, :width].long().cumsum(-1) - 1).clamp(min=0)
    causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
    # A padded query attends to itself only, so no row of the mask is empty.
    mask = (causal & valid[:, None, :width]) | torch.eye(width, dtype=torch.bool, device=device)
    cache = KVCache(model.config, b, width + max_new, device=device, dtype=model.output_weight.dtype)
    logits = _vocab_logits(model(ids, positions, cache, mask[:, None])[:, -1], tokenizer.vocab_size)
    generator = torch.Generator(device=device).manual_seed(cfg.seed) if cfg.temperature > 0 else None
    new = [[] for _ in range(b)]
    texts, done = [""] * b, [False] * b
    last_pos = positions[:, -1]
    stops = cfg.stop or cfg.stop_kept
    for step in range(max_new):
        token = _next_tokens(logits, cfg, generator)
        for i in range(b):
            if done[i]:
                continue
            if cfg.stop_at_eot and int(token[i]) == tokenizer.eot_id:
                done[i] = True
                continue
            new[i].append(int(token[i]))
            if stops:
                texts[i], done[i] = _cut_at_stop(tokenizer.decode(new[i]), cfg.stop, cfg.stop_kept)
        if all(done) or step == max_new - 1:
            break
        last_pos = last_pos + 1
        step_mask = valid[:, None, None, : width + step + 1]
        logits = _vocab_logits(model(token[:, None], last_pos[:, None], cache, step_mask)[:, -1], tokenizer.vocab_size)
    return [(texts[i] if stops else tokenizer.decode(new[i]), len(new[i])) for i in range(b)]


@torch.no_grad()
def generate_without_cache(
    model: Transformer, tokenizer: TokenizerLike, prompt: list[int], cfg: GenerationConfig
) -> str:
    """Reference decoder: re-runs the whole prefix for every new token (greedy only). For tests and benchmarks."""
    max_new = new_token_budget(model.config.max_seq_len, cfg.max_new_tokens)
    (prompt,) = _fit_prompts([prompt], model.config.max_seq_len, max_new)
    ids = torch.tensor([prompt], device=model.output_weight.device)
    stops = cfg.stop or cfg.stop_kept
    new: list[int] = []
    for _ in range(max_new):
        token = int(_vocab_logits(model(ids)[0, -1], tokenizer.vocab_size).argmax())
        if cfg.stop_at_eot and token == tokenizer.eot_id:
            break
        new.append(token)
        if stops and _cut_at_stop(tokenizer.decode(new), cfg.stop, cfg.stop_kept)[1]:
            break
        ids = torch.cat([ids, ids.new_tensor([[token]])], dim=1)
    return _cut_at_stop(tokenizer.decode(new), cfg.stop, cfg.stop_kept)[0]


@torch.no_grad()
def loglikelihoods(
    model: Transformer, contexts: Sequence[list[int]], continuations: Sequence[list[int]]
) -> list[float]:
    """Sum of log p(continuation | context) for each pair (contexts left-truncated to fit the model)."""
    scores = []
    for context, continuation in zip(contexts, continuations):
        if not continuation:
            raise ValueError("empty continuation")
        keep = model.config.max_seq_len + 1 - len(continuation)
        ids = (list(context) + list(continuation))[-(model.config.max_seq_len + 1) :]
        if keep < 1:
            raise UserError(f"continuation of {len(continuation)} tokens does not fit max_seq_len")
        x = torch.tensor([ids[:-1]], device=model.output_weight.device)
        logprobs = F.log_softmax(model(x)[0].float(), -1)
        targets = torch.tensor(ids[-len(continuation) :], device=x.device)
        scores.append(float(logprobs[-len(continuation) :].gather(-1, targets[:, None]).sum()))
    return scores
