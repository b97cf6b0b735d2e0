"""Greedy or sampled decoding from a trained model, and loading a model from a checkpoint for inference."""

from __future__ import annotations

from pathlib import Path

import torch

from minimath.checkpoint import load_checkpoint, load_weights, model_state
from minimath.errors import UserError
from minimath.model import ModelConfig, Transformer
from minimath.tokenizer import TokenizerLike, tokenizer_from_state


def load_for_inference(path: str | Path) -> tuple[Transformer, TokenizerLike]:
    """The model and tokenizer a `train.py` checkpoint was trained with (loaded with weights_only=True)."""
    ckpt = load_checkpoint(path)
    hparams = ckpt["hyper_parameters"]
    try:
        model = Transformer(ModelConfig(**hparams["model"]))
        tokenizer = tokenizer_from_state(hparams["tokenizer"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path} does not describe a MiniMATH model ({err})") from None
    load_weights(model, model_state(ckpt), str(path))
    return model.eval(), tokenizer


@torch.no_grad()
def generate(model: Transformer, prompt_ids: list[int], max_new_tokens: int, stop_id: int | None = None,
             temperature: float = 0.0, generator: torch.Generator | None = None) -> list[int]:
    """New token ids after `prompt_ids`; greedy when temperature is 0. Re-runs the (cropped) prefix each step."""
    if not prompt_ids:
        raise UserError("the prompt is empty")
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    new: list[int] = []
    for _ in range(max_new_tokens):
        logits = model(ids[:, -model.cfg.max_seq_len:])[0, -1].float()
        if temperature > 0:
            next_id = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator))
        else:
            next_id = int(logits.argmax())
        if next_id == stop_id:
            break
        new.append(next_id)
        ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    return new
