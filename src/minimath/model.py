"""The MiniMATH transformer: llama2.c-style decoder with tied embeddings.

As in MiniMATH's released `model/modelv0.py`: RMSNorm pre-norm, rotary position embeddings (θ = 1e4),
SwiGLU feed-forward whose hidden size is given directly (their code uses 4·d, without LLaMA's 2/3 factor),
optional grouped-query attention, no biases. The output layer shares the token embedding matrix.

Init (report, after GPT-2): every linear and embedding weight ~ N(0, 0.02); the projections that write into
the residual stream ~ N(0, 0.02/√(2·n_layer)). `init_residual="gpt2"` scales those projections (`wo` and the
FFN's down projection `w2`); `init_residual="minimath_code"` reproduces their code, which scales `wo` and the
gate's up projection `w3` (a llama2.c quirk: there the down projection is `w2`).

µP (`mup=True`, MiniCPM's form; YuLan-Mini's table in the seeds) with width multiplier m = n_embd / mup_base_width:
the embedding output × `mup_scale_emb`; each residual branch × `mup_scale_depth`/√n_layer; every hidden matrix
(wq, wk, wv, wo, w1, w2, w3) initialised with variance init_std²/m (std ÷ √m, replacing the GPT-2 depth scaling,
which the residual multiplier takes over) and trained at LR ÷ m (`parameter_groups`); the output logits ÷ m. The
tied embedding is one matrix with two roles: it is initialised and trained as an input embedding (std init_std,
the base LR — µP's "vector-like" parameter), and its output role gets µP's factor from the 1/m logit multiplier,
applied to the final hidden states (h/m)·Eᵀ, so the embedding's gradient through the output layer is 1/m as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

INIT_STYLES = ("gpt2", "minimath_code")


@dataclass
class ModelConfig:
    vocab_size: int  # embedding rows (already padded)
    n_layer: int
    n_head: int
    n_kv_head: int  # = n_head for multi-head attention; a divisor of it for GQA
    n_embd: int
    ffn_hidden: int
    max_seq_len: int
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02
    init_residual: str = "gpt2"
    qk_norm: bool = False  # RMSNorm on each head's queries and keys before RoPE (YuLan-Mini's QK-LayerNorm)
    mup: bool = False  # MiniCPM's µP (module docstring); off: the report's standard parametrisation
    mup_base_width: int = 256  # the width whose hyper-parameters transfer (MiniCPM's dim_model_base)
    mup_scale_emb: float = 12.0  # embedding output multiplier (MiniCPM 12, YuLan-Mini 10)
    mup_scale_depth: float = 1.4  # residual branch multiplier scale_depth/√n_layer (MiniCPM, YuLan-Mini)

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} is not divisible by n_kv_head={self.n_kv_head}")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError(f"head size {self.n_embd // self.n_head} must be even for rotary embeddings")
        if self.init_residual not in INIT_STYLES:
            raise ValueError(f"init_residual={self.init_residual!r}; choose one of {INIT_STYLES}")
        if self.mup and self.mup_base_width <= 0:
            raise ValueError(f"mup_base_width={self.mup_base_width} must be positive")

    @property
    def width_mult(self) -> float:
        """µP's m = n_embd / mup_base_width (1 without µP)."""
        return self.n_embd / self.mup_base_width if self.mup else 1.0

    @property
    def embedding_scale(self) -> float:
        return self.mup_scale_emb if self.mup else 1.0

    @property
    def residual_scale(self) -> float:
        return self.mup_scale_depth / math.sqrt(self.n_layer) if self.mup else 1.0

    @classmethod
    def from_preset(cls, preset, **derived) -> ModelConfig:
        """From a `conf/model` preset (a mapping with more keys than the architecture: name, tokenizer, lr, ...):
        every architecture field the preset sets, plus what is truly derived (`vocab_size`, a benchmark's
        `max_seq_len`). A field added here is picked up by every caller; a missing required one is a ValueError."""
        names = [f.name for f in fields(cls)]
        values = {k: preset[k] for k in names if k in preset and k not in derived}
        missing = [
            k for k in names if k not in values and k not in derived and cls.__dataclass_fields__[k].default is MISSING
        ]
        if missing:
            raise ValueError(f"the model preset does not set {', '.join(missing)}")
        return cls(**values, **derived)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def count_params(config: ModelConfig) -> dict[str, int]:
    """Closed-form parameter counts; the embedding is counted once because it is tied to the output."""
    d, kv = config.n_embd, config.n_kv_head * config.head_dim
    attention = d * d + 2 * d * kv + d * d  # wq, wk, wv, wo
    ffn = 3 * d * config.ffn_hidden  # w1, w2, w3
    norms = 2 * d + (2 * config.head_dim if config.qk_norm else 0)
    non_embedding = config.n_layer * (attention + ffn + norms) + d  # + final norm
    embedding = config.vocab_size * d
    return {"total": non_embedding + embedding, "non_embedding": non_embedding, "embedding": embedding}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 so bf16 activations keep their scale.
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(head_dim: int, seq_len: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each (seq_len, head_dim/2), for rotating pairs (x[2i], x[2i+1]) as llama2.c does."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), freqs)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (batch, heads, seq, head_dim); rotates interleaved pairs."""
    xf = x.float().unflatten(-1, (-1, 2))
    x0, x1 = xf[..., 0], xf[..., 1]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2).type_as(x)


def document_attention(documents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (batch, seq) and a boolean attention mask (batch, 1, seq, seq) that keep packed documents apart:
    `documents` numbers each position's document; a position attends only to earlier positions of its own document,
    and positions restart at 0 with each document, so a packed document computes what it would alone."""
    t = documents.shape[1]
    index = torch.arange(t, device=documents.device)
    starts = torch.ones_like(documents, dtype=torch.bool)
    starts[:, 1:] = documents[:, 1:] != documents[:, :-1]
    positions = index - torch.cummax(torch.where(starts, index, 0), dim=1).values
    causal = torch.ones(t, t, dtype=torch.bool, device=documents.device).tril()
    mask = (documents[:, :, None] == documents[:, None, :]) & causal
    return positions, mask[:, None]


class KVCache:
    """Keys and values of every layer for up to `max_len` positions, filled left to right during decoding."""

    def __init__(self, config: ModelConfig, batch: int, max_len: int, device=None, dtype=torch.float32):
        shape = (config.n_layer, batch, config.n_kv_head, max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions filled (the same for every layer once a forward pass ends)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys/values for `layer`; return all keys/values so far, in the dtype the layer computes
        in (FSDP's mixed precision gathers bf16 weights for a model whose cache was sized from its fp32 ones)."""
        t = k.shape[2]
        if self.length + t > self.k.shape[3]:
            raise ValueError(f"KV cache of {self.k.shape[3]} positions is full")
        self.k[layer, :, :, self.length : self.length + t] = k
        self.v[layer, :, :, self.length : self.length + t] = v
        end = self.length + t
        if layer == self.k.shape[0] - 1:
            self.length = end
        return self.k[layer, :, :, :end].to(k.dtype), self.v[layer, :, :, :end].to(v.dtype)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        self.wq = nn.Linear(config.n_embd, config.n_head * config.head_dim, bias=False)
        self.wk = nn.Linear(config.n_embd, config.n_kv_head * config.head_dim, bias=False)
        self.wv = nn.Linear(config.n_embd, config.n_kv_head * config.head_dim, bias=False)
        self.wo = nn.Linear(config.n_head * config.head_dim, config.n_embd, bias=False)
        # one gain vector per head dimension, shared by the heads (as YuLan-Mini's q_norm/k_norm)
        self.q_norm = RMSNorm(config.head_dim, config.norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(config.head_dim, config.norm_eps) if config.qk_norm else None

    def queries_keys(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotated (and, with qk_norm, normalised) queries (b, heads, t, d) and keys (b, kv_heads, t, d)."""
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.n_kv_head, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:  # bounds the attention logits by the gains, whatever the weights' scale
            q, k = self.q_norm(q), self.k_norm(k)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin)

    def max_logit(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """max |q·k|/√d over heads and positions: what grows before attention entropy collapses (QK-norm bounds it)."""
        q, k = self.queries_keys(x, cos, sin)
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        return (q.float() @ k.float().transpose(-1, -2)).abs().amax() / self.head_dim**0.5

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q, k = self.queries_keys(x, cos, sin)
        v = self.wv(x).view(b, t, self.n_kv_head, self.head_dim).transpose(1, 2)
        gqa = self.n_kv_head != self.n_head
        if cache is None and mask is None:  # training: plain causal attention (flash/efficient kernels)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            if cache is not None:
                k, v = cache.append(layer, k, v)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    """SwiGLU as llama2.c names it: w2(silu(w1·x) * w3·x); w2 is the down projection."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(config.n_embd, config.ffn_hidden, bias=False)
        self.w2 = nn.Linear(config.ffn_hidden, config.n_embd, bias=False)
        self.w3 = nn.Linear(config.n_embd, config.ffn_hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.feed_forward = FeedForward(config)
        self.residual_scale = config.residual_scale

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        a = self.attention(self.attention_norm(x), cos, sin, cache, layer, mask)
        x = x + (a if self.residual_scale == 1.0 else a * self.residual_scale)
        f = self.feed_forward(self.ffn_norm(x))
        return x + (f if self.residual_scale == 1.0 else f * self.residual_scale)


@dataclass(frozen=True)
class Probe:
    """A quantity a monitor reads off the forward pass: `measure(inputs, output)` of `module`'s forward, a scalar."""

    name: str
    module: nn.Module
    measure: Callable[[tuple, torch.Tensor], torch.Tensor]


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.float().pow(2).mean().sqrt()


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.n_embd)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        cos, sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        # Recompute each block's activations in backward instead of keeping them (`hardware.activation_checkpointing`):
        # a training-time setting, not architecture, so it is not in the config or in checkpoints.
        self.activation_checkpointing = False
        self.reset_parameters()

    @property
    def output_weight(self) -> torch.Tensor:
        """The output layer is the token embedding (tied): logits = h · Eᵀ."""
        return self.tok_embeddings.weight

    def probes(self, logit_positions: int = 256) -> list[Probe]:
        """What the stability monitors read (YuLan-Mini's), per block i: `layer<i>/hidden_rms` (the residual stream
        after it), `layer<i>/{attn_norm,ffn_norm}_rms` (its norms' outputs) and `layer<i>/max_attn_logit`; and
        `logit_rms`, the output logits' RMS over at most `logit_positions` positions."""

        def output_rms(inputs, output):
            return _rms(output)

        def logit_rms(inputs, normed):
            return _rms(
                self.output_hidden(normed.flatten(0, -2)[:logit_positions]).float() @ self.output_weight.float().T
            )

        probes = []
        for i, block in enumerate(self.layers):
            probes += [
                Probe(f"layer{i}/hidden_rms", block, output_rms),
                Probe(f"layer{i}/attn_norm_rms", block.attention_norm, output_rms),
                Probe(f"layer{i}/ffn_norm_rms", block.ffn_norm, output_rms),
                Probe(
                    f"layer{i}/max_attn_logit",
                    block.attention,
                    lambda inputs, output, attention=block.attention: attention.max_logit(*inputs[:3]),
                ),
            ]
        return probes + [Probe("logit_rms", self.norm, logit_rms)]

    def residual_projection_names(self) -> tuple[str, ...]:
        return (
            ("attention.wo", "feed_forward.w2")
            if self.config.init_residual == "gpt2"
            else ("attention.wo", "feed_forward.w3")
        )

    def init_std_of(self, name: str, module: nn.Module) -> float:
        """The init std of a linear or embedding module: the embedding init_std; a hidden matrix init_std/√m under
        µP, else init_std, or init_std/√(2·n_layer) for the residual projections (GPT-2)."""
        std = self.config.init_std
        if isinstance(module, nn.Embedding):
            return std
        if self.config.mup:
            return std / math.sqrt(self.config.width_mult)
        return std / math.sqrt(2 * self.config.n_layer) if name.endswith(self.residual_projection_names()) else std

    def parameter_groups(self) -> list[tuple[str, list[nn.Parameter], float, bool]]:
        """(name, parameters, LR multiplier, weight decay?) for AdamW: matrices decay and vectors (norm gains) do
        not; under µP the hidden matrices train at LR ÷ m and the embedding (tied) at the base LR. Without µP two
        groups, as checkpoints of earlier runs hold."""
        embedding = self.tok_embeddings.weight
        vectors = [p for p in self.parameters() if p.dim() < 2]
        if not self.config.mup:
            return [
                ("matrices", [p for p in self.parameters() if p.dim() >= 2], 1.0, True),
                ("vectors", vectors, 1.0, False),
            ]
        hidden = [p for p in self.parameters() if p.dim() >= 2 and p is not embedding]
        return [
            ("hidden_matrices", hidden, 1.0 / self.config.width_mult, True),
            ("embedding", [embedding], 1.0, True),
            ("vectors", vectors, 1.0, False),
        ]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, self.init_std_of(name, module))
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
        if self.rope_cos.device.type != "meta":
            cos, sin = rope_tables(
                self.config.head_dim, self.config.max_seq_len, self.config.rope_theta, self.rope_cos.device
            )
            self.rope_cos.copy_(cos)
            self.rope_sin.copy_(sin)

    def hidden_states(
        self,
        idx: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final normalised hidden states (batch, seq, n_embd), µP's logit multiplier included; the loss applies the
        tied output layer.

        Training passes `idx` alone (positions 0..t-1, causal), or with the `positions` and `mask` of
        `document_attention` when packed documents are kept apart. Decoding passes per-sequence `positions`
        (batch, seq), a `cache` that accumulates keys/values, and a boolean attention `mask`
        (batch, 1, seq, cached + seq) that hides left padding.
        """
        t = idx.shape[1]
        if positions is None:
            if t > self.config.max_seq_len:
                raise ValueError(f"sequence of {t} tokens exceeds max_seq_len={self.config.max_seq_len}")
            cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        else:
            if int(positions.max()) >= self.config.max_seq_len:
                raise ValueError(f"position {int(positions.max())} exceeds max_seq_len={self.config.max_seq_len}")
            cos, sin = self.rope_cos[positions].unsqueeze(1), self.rope_sin[positions].unsqueeze(1)
        x = self.tok_embeddings(idx)
        if self.config.embedding_scale != 1.0:
            x = x * self.config.embedding_scale
        recompute = self.activation_checkpointing and cache is None and torch.is_grad_enabled()
        for i, layer in enumerate(self.layers):
            if recompute:  # only the block's input is kept; its inside is recomputed in backward
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, None, i, mask, use_reentrant=False)
            else:
                x = layer(x, cos, sin, cache, i, mask)
        return self.output_hidden(self.norm(x))

    def output_hidden(self, normed: torch.Tensor) -> torch.Tensor:
        """What multiplies the tied output layer: the final norm's output, ÷ m under µP (the logit multiplier)."""
        return normed if self.config.width_mult == 1.0 else normed / self.config.width_mult

    def forward(
        self,
        idx: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (batch, seq, vocab_size)."""
        return F.linear(self.hidden_states(idx, positions, cache, mask), self.output_weight)
