"""Any `transformers` causal LM as the evaluation sees a model (`ckpt=hf:DIR`): the baselines of the seeds' tables
(TinyLlama, Qwen1.5, Phi-2, MiniCPM, …) scored by the same prompts, protocols and scorer as our checkpoints.

- **Model**: `AutoModelForCausalLM` (any architecture transformers loads: untied, with biases), bf16 on a GPU, fp32 on
  the CPU; batched greedy (or sampled) generation through transformers' `generate` with its KV cache, prompts
  left-padded, stop strings checked on the decoded continuation as our decoder does (`generation._cut_at_stop`),
  and a fresh generation config, so a checkpoint's own sampling defaults (temperature, repetition penalty) never
  apply; log-likelihoods of continuations as ours.
- **Tokenizer**: the model's own (`AutoTokenizer`), never a compact vocabulary. A prompt starts with its BOS token
  (when it has one) where ours start after `<|endoftext|>`, and the report protocol's chat turn is the model's chat
  template when it has one (else MiniMATH's ChatML text): `PromptFrame`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from minimath.errors import UserError
from minimath.eval.generation import GenerationConfig, _cut_at_stop, _fit_prompts, new_token_budget
from minimath.eval.prompts import PromptFrame, chat

HF_PREFIX = "hf:"
_LENGTH_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


class HFTokenizer:
    """A transformers tokenizer as `tokenizer.TokenizerLike`: text in, ids out, no special tokens added."""

    def __init__(self, tokenizer, name: str):
        self.hf, self.name = tokenizer, name
        self.vocab_size = len(tokenizer)
        self.eot_id = tokenizer.eos_token_id
        self.unk_id = tokenizer.unk_token_id

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def frame(self) -> PromptFrame:
        """Prompts start with the BOS token; the chat turn is the model's template, else ChatML."""
        start = self.hf.bos_token or ""
        if not self.hf.chat_template:
            return PromptFrame(start=start, chat=chat)

        def template(question: str) -> str:
            text = self.hf.apply_chat_template(
                [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
            )
            return text[len(start) :] if start and text.startswith(start) else text  # the frame adds it

        return PromptFrame(start=start, chat=template)


class _StopOnText:
    """transformers stopping criterion: a row is done once its continuation's text holds a stop string."""

    def __init__(self, tokenizer: HFTokenizer, prompt_width: int, stops: Sequence[str]):
        self.tokenizer, self.width, self.stops = tokenizer, prompt_width, tuple(stops)

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        texts = [self.tokenizer.decode(row[self.width :].tolist()) for row in input_ids]
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)


@dataclass
class HFCausalLM:
    """A transformers causal LM with the members `runner.LanguageModel` asks for."""

    model: torch.nn.Module
    tokenizer: HFTokenizer
    max_seq_len: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def frame(self) -> PromptFrame:
        return self.tokenizer.frame()

    @torch.no_grad()
    def generate(self, prompts: Sequence[list[int]], cfg: GenerationConfig) -> list[str]:
        from transformers import GenerationConfig as HFGenerationConfig
        from transformers import StoppingCriteriaList

        max_new = new_token_budget(self.max_seq_len, cfg.max_new_tokens)
        prompts = _fit_prompts(prompts, self.max_seq_len, max_new)
        eos = self.tokenizer.eot_id if cfg.stop_at_eot else None
        pad = next(i for i in (self.tokenizer.hf.pad_token_id, self.tokenizer.eot_id, 0) if i is not None)
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):  # left padding: every prompt ends at the same column
            ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = 1
        sampled = cfg.temperature > 0
        settings = HFGenerationConfig(
            max_new_tokens=max_new,
            do_sample=sampled,
            temperature=cfg.temperature if sampled else None,
            top_p=cfg.top_p if sampled else None,
            top_k=None,
            eos_token_id=eos,
            pad_token_id=pad,
            use_cache=True,
        )
        stops = (*cfg.stop, *cfg.stop_kept)
        criteria = StoppingCriteriaList([_StopOnText(self.tokenizer, width, stops)]) if stops else None
        if sampled:
            torch.manual_seed(cfg.seed)
        out = self.model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            generation_config=settings,
            stopping_criteria=criteria,
        )
        texts = []
        for row in out[:, width:].tolist():
            new = row[: row.index(eos)] if eos is not None and eos in row else row
            texts.append(_cut_at_stop(self.tokenizer.decode(new), cfg.stop, cfg.stop_kept)[0])
        return texts

    @torch.no_grad()
    def loglikelihoods(self, contexts: Sequence[list[int]], continuations: Sequence[list[int]]) -> list[float]:
        """Sum of log p(continuation | context) for each pair (contexts left-truncated to fit the model)."""
        scores = []
        for context, continuation in zip(contexts, continuations):
            ids = (list(context) + list(continuation))[-(self.max_seq_len + 1) :]
            x = torch.tensor([ids[:-1]], device=self.device)
            logprobs = F.log_softmax(self.model(input_ids=x).logits[0].float(), -1)
            targets = torch.tensor(ids[-len(continuation) :], device=self.device)
            scores.append(float(logprobs[-len(continuation) :].gather(-1, targets[:, None]).sum()))
        return scores


def hf_directory(spec: str) -> Path | None:
    """The directory of `ckpt=hf:DIR`, None for any other checkpoint."""
    return Path(spec[len(HF_PREFIX) :]) if str(spec).startswith(HF_PREFIX) else None


def context_length(config, tokenizer) -> int:
    """The positions the model was built for (its config), else what its tokenizer says, else 2048."""
    for field in _LENGTH_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1 << 20 else 2048


def load_hf(directory: str | Path) -> HFCausalLM:
    """The model and tokenizer saved in `directory` (`save_pretrained`), on the GPU in bf16 when there is one."""
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise UserError(f"ckpt=hf:{directory}: no config.json there (a transformers save_pretrained directory)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype)
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"ckpt=hf:{directory}: transformers cannot load it ({str(err).splitlines()[0]})") from None
    model = model.to("cuda" if cuda else "cpu").eval()
    name = directory.resolve().name
    return HFCausalLM(model, HFTokenizer(tokenizer, name), context_length(model.config, tokenizer))
