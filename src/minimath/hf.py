"""Hugging Face interoperability: our checkpoints as `transformers` model directories (Llama, or Qwen3 when the
model has QK-norm) with a fast tokenizer equivalent to ours, and Llama-shaped `transformers` checkpoints as
weights to start a stage from (`init_from=hf:DIR`).

**Weights.** Our blocks are Llama's: RMSNorm pre-norm, SwiGLU (`w1` = gate_proj, `w3` = up_proj, `w2` =
down_proj), no biases, tied embeddings. One difference is the rotary layout: we rotate interleaved pairs
(x[2i], x[2i+1]) as llama2.c and Meta's release do, transformers rotates the two halves of each head; the q/k rows
of every head are permuted between the two (`permute_rotary`), which leaves q·k, and so the logits,
unchanged (QK-norm gains are permuted with them). µP's multipliers are folded into weights: the embedding scale
into `embed_tokens`, the residual multiplier into `o_proj` and `down_proj`, the logit multiplier 1/m into
`lm_head`; a µP model is therefore exported untied (embed_tokens = E·scale_emb, lm_head = E/m), and only a model
without µP is imported back.

**Tokenizer.** A `tokenizers` byte-level BPE built from the tiktoken ranks: merges derived from the ranks (each
token's merge is the pair its own BPE ends with), `ignore_merges` (a pre-token that is a whole token is looked up
directly, as tiktoken does), the vocabulary's split pattern (Qwen's: digits one per token), NFC first (Qwen), the
special tokens as added tokens at their ids. The full vocabulary is exact: the same ids as ours on any text.

A **compact vocabulary** keeps our ids: each kept token at its compact id, the special tokens at theirs, and the
unknown id as the added token U+FFFD (what ours decodes it to). BPE reaches a kept token through intermediate
tokens that a compact vocabulary need not keep, so those (and the 256 byte tokens) are in the exported vocabulary
too, at ids after the model's rows, their embedding rows copies of the unknown id's row; every merge whose result is
exported is kept, and with them the exported BPE makes exactly our merges on any text whose tokens the compact
vocabulary keeps (the merges it drops produce only tokens outside the closure). On text with tokens outside it we
write one unknown id per such token, the export writes the intermediate pieces (read by the model as unknown rows).
The extra rows add columns equal to the unknown id's logit, which a trained model keeps far below the others; the
logits of our ids are unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from minimath.checkpoint import weights_checkpoint
from minimath.errors import UserError
from minimath.model import ModelConfig, Transformer
from minimath.tokenizer import UNK_TEXT, CompactTokenizer, Tokenizer, TokenizerLike

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ---------------------------------------------------------------------------------------------------- weights


def permute_rotary(w: torch.Tensor, n_heads: int, to_hf: bool) -> torch.Tensor:
    """Rows of a q/k projection (n_heads·d, …) from our interleaved-pair rotary order to transformers' half order
    (`to_hf`), or back: each head's rows viewed as a (d/2, 2) grid, or a (2, d/2) one, and transposed."""
    d = w.shape[0] // n_heads
    grid = (d // 2, 2) if to_hf else (2, d // 2)
    return w.reshape(n_heads, *grid, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def rotary_heads(config: ModelConfig, name: str) -> int | None:
    """How many heads' rows weight `name` (of a layer) holds in rotary order; None for a weight RoPE does not touch
    (the QK-norm gains act on one head's dimensions, so they are permuted with the rows)."""
    return {
        "attention.wq.weight": config.n_head,
        "attention.wk.weight": config.n_kv_head,
        "attention.q_norm.weight": 1,
        "attention.k_norm.weight": 1,
    }.get(name)


LAYER_NAMES = {  # ours -> transformers, within layer i
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "attention.q_norm.weight": "self_attn.q_norm.weight",
    "attention.k_norm.weight": "self_attn.k_norm.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
}
RESIDUAL_OUTPUTS = ("attention.wo.weight", "feed_forward.w2.weight")


def hf_config(config: ModelConfig, vocab_rows: int, eot_id: int, dtype: torch.dtype) -> dict:
    """The transformers config.json of a model (Llama; Qwen3 when it has QK-norm)."""
    arch = "qwen3" if config.qk_norm else "llama"
    hf = {
        "architectures": ["Qwen3ForCausalLM" if config.qk_norm else "LlamaForCausalLM"],
        "model_type": arch,
        "vocab_size": vocab_rows,
        "hidden_size": config.n_embd,
        "intermediate_size": config.ffn_hidden,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "num_key_value_heads": config.n_kv_head,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": not config.mup,
        "initializer_range": config.init_std,
        "bos_token_id": None,
        "eos_token_id": eot_id,
        "pad_token_id": None,
        "use_cache": True,
        "dtype": str(dtype).removeprefix("torch."),
        "minimath": {"model": asdict(config)},  # what it was exported from (transformers ignores unknown keys)
    }
    if config.qk_norm:
        hf.update({"use_sliding_window": False, "sliding_window": None, "max_window_layers": config.n_layer})
    return hf


def to_hf_state(model: Transformer, extra_rows: int = 0, unk_row: int | None = None) -> dict[str, torch.Tensor]:
    """transformers' state dict of our model; `extra_rows` copies of row `unk_row` appended to the embedding."""
    config = model.config
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    embedding = ours["tok_embeddings.weight"]
    if extra_rows:
        embedding = torch.cat([embedding, embedding[unk_row].expand(extra_rows, -1)])
    out = {
        "model.embed_tokens.weight": embedding * config.embedding_scale if config.mup else embedding,
        "model.norm.weight": ours["norm.weight"],
    }
    if config.mup:
        out["lm_head.weight"] = embedding / config.width_mult
    for i in range(config.n_layer):
        for name, hf_name in LAYER_NAMES.items():
            key = f"layers.{i}.{name}"
            if key not in ours:
                continue
            w = ours[key]
            if n_heads := rotary_heads(config, name):
                w = permute_rotary(w, n_heads, to_hf=True)
            elif name in RESIDUAL_OUTPUTS and config.mup:
                w = w * config.residual_scale
            out[f"model.layers.{i}.{hf_name}"] = w
    return {k: v.contiguous() for k, v in out.items()}


def from_hf(directory: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Our model config and state dict from a Llama-shaped transformers directory (config.json + safetensors);
    anything our architecture cannot represent is a one-line UserError."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise UserError(f"init_from=hf:{directory}: no config.json there (a transformers model directory is needed)")
    hf = json.loads(config_path.read_text())
    arch = hf.get("model_type")
    problems = []
    if arch not in ("llama", "qwen3", "mistral", "qwen2"):
        problems.append(f"model_type {arch!r} is not Llama-shaped")
    if hf.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {hf.get('hidden_act')!r} (ours: SwiGLU with silu)")
    if hf.get("attention_bias") or hf.get("mlp_bias") or arch == "qwen2":
        problems.append("biases in attention or MLP (ours has none)")
    if not hf.get("tie_word_embeddings", False):
        problems.append("untied input and output embeddings (ours are tied)")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        problems.append(f"rope scaling {rope.get('rope_type', rope.get('type'))!r} (ours: plain RoPE)")
    if hf.get("sliding_window") and hf.get("use_sliding_window", arch == "mistral"):
        problems.append("sliding-window attention")
    if problems:
        raise UserError(f"init_from=hf:{directory}: cannot load into this model: {'; '.join(problems)}")
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise UserError(f"init_from=hf:{directory}: no .safetensors weights there")
    hf_state: dict[str, torch.Tensor] = {}
    for f in files:
        hf_state.update(load_file(str(f)))
    heads, kv = int(hf["num_attention_heads"]), int(hf.get("num_key_value_heads", hf["num_attention_heads"]))
    hidden = int(hf["hidden_size"])
    config = ModelConfig(
        vocab_size=int(hf["vocab_size"]),
        n_layer=int(hf["num_hidden_layers"]),
        n_head=heads,
        n_kv_head=kv,
        n_embd=hidden,
        ffn_hidden=int(hf["intermediate_size"]),
        max_seq_len=int(hf.get("max_position_embeddings", 2048)),
        rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10_000.0))),
        norm_eps=float(hf.get("rms_norm_eps", 1e-5)),
        qk_norm=arch == "qwen3",
    )
    if int(hf.get("head_dim") or hidden // heads) != config.head_dim:
        raise UserError(
            f"init_from=hf:{directory}: head_dim {hf.get('head_dim')} is not hidden_size/heads "
            f"= {config.head_dim} (ours derives it)"
        )
    inverse = {v: k for k, v in LAYER_NAMES.items()}
    state = {
        "tok_embeddings.weight": hf_state.pop("model.embed_tokens.weight"),
        "norm.weight": hf_state.pop("model.norm.weight"),
    }
    hf_state.pop("lm_head.weight", None)  # tied: the same matrix
    for key in list(hf_state):
        parts = key.split(".")
        if parts[:2] != ["model", "layers"] or ".".join(parts[3:]) not in inverse:
            raise UserError(f"init_from=hf:{directory}: weight {key} has no place in our architecture")
        name = inverse[".".join(parts[3:])]
        w = hf_state.pop(key)
        if n_heads := rotary_heads(config, name):
            w = permute_rotary(w, n_heads, to_hf=False)
        state[f"layers.{parts[2]}.{name}"] = w
    return config, state


# -------------------------------------------------------------------------------------------------- tokenizer


def bytes_to_unicode() -> dict[int, str]:
    """The byte-level BPE alphabet: every byte as a printable character (GPT-2's table, which ByteLevel uses)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


def _merge_of(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes]:
    """The pair whose merge makes `token`: BPE of its bytes with merges ranked below its own, which ends in two."""
    limit = ranks[token]
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < limit and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise UserError(f"token {token!r} is not the merge of two tokens of lower rank: not a BPE vocabulary")
    return parts[0], parts[1]


def hf_tokenizer_json(tokenizer: TokenizerLike, rows: int) -> tuple[dict, int]:
    """tokenizer.json (as a dict) equivalent to `tokenizer`, and how many ids it has past the model's `rows`
    (a compact vocabulary's intermediate tokens; 0 for a full one)."""
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    compact = tokenizer if isinstance(tokenizer, CompactTokenizer) else None
    base: Tokenizer = compact.base if compact else tokenizer
    encoding = base.encoding
    ranks: dict[bytes, int] = dict(encoding._mergeable_ranks)
    specials: dict[str, int] = dict(encoding._special_tokens)
    merges = {token: _merge_of(ranks, token) for token in ranks if len(token) > 1}
    extra = 0
    if compact is None:
        ids = dict(ranks)
        special_ids = specials
    else:
        kept = {int(b): c for c, b in enumerate(compact.kept_ids.tolist())}
        by_rank = {r: t for t, r in ranks.items()}
        closure: set[bytes] = {bytes([b]) for b in range(256)}
        stack = [by_rank[b] for b in kept if b in by_rank]
        while stack:
            token = stack.pop()
            if token in closure:
                continue
            closure.add(token)
            if len(token) > 1:
                stack.extend(merges[token])
        extras = sorted((t for t in closure if ranks[t] not in kept), key=ranks.get)
        ids = {t: kept[ranks[t]] for t in closure if ranks[t] in kept}
        ids.update({t: rows + i for i, t in enumerate(extras)})
        extra = len(extras)
        special_ids = {t: kept[i] for t, i in specials.items()}
    alphabet = bytes_to_unicode()
    text = lambda b: "".join(alphabet[x] for x in b)  # noqa: E731
    unknown = compact is not None and compact.encode(UNK_TEXT) == [compact.unk_id]
    # added tokens take their ids from the model's vocabulary when it has them (else the next free ones): so the
    # special tokens (and the unknown id's U+FFFD) are entries of the BPE vocabulary too, which BPE never reaches
    # (added tokens are split off before it)
    vocab = {text(t): i for t, i in ids.items()} | special_ids | ({UNK_TEXT: compact.unk_id} if unknown else {})
    merge_list = [
        (text(a), text(b))
        for t, (a, b) in sorted(merges.items(), key=lambda kv: ranks[kv[0]])
        if t in ids and a in ids and b in ids
    ]
    hf = HFTokenizer(models.BPE(vocab=vocab, merges=merge_list, ignore_merges=True, fuse_unk=False))
    if base.normalize_nfc:
        hf.normalizer = normalizers.NFC()
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(encoding._pat_str), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    hf.decoder = decoders.ByteLevel()
    spec = json.loads(hf.to_str())
    added = [
        {
            "id": i,
            "content": t,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for t, i in sorted(special_ids.items(), key=lambda kv: kv[1])
    ]
    if unknown:
        # the unknown id decodes to U+FFFD, as ours; a literal U+FFFD is unknown to both
        added.append(
            {
                "id": compact.unk_id,
                "content": UNK_TEXT,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
    spec["added_tokens"] = added
    return spec, extra


def save_hf_tokenizer(tokenizer: TokenizerLike, rows: int, out: Path, max_len: int) -> int:
    """tokenizer.json, tokenizer_config.json (the report protocol's chat template, EOT as eos) into `out`; returns
    the number of ids past the model's rows."""
    from tokenizers import Tokenizer as HFTokenizer
    from transformers import PreTrainedTokenizerFast

    spec, extra = hf_tokenizer_json(tokenizer, rows)
    eot = tokenizer.decode([tokenizer.eot_id])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=HFTokenizer.from_str(json.dumps(spec)),
        eos_token=eot,
        model_max_length=max_len,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    return extra


def hf_checkpoint(directory: Path) -> dict:
    """A transformers directory as the checkpoint dict a stage starts from (`init_from=hf:DIR`): its weights under
    `model.`, the architecture it describes, no training state."""
    return weights_checkpoint(*from_hf(directory))
