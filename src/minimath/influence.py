"""Gradient-based influence features (LESS, as JiuZhang3.0 uses it to spend its teacher calls on the math texts
that matter most for the target tasks).

An example's feature is the gradient of its next-token loss — the loss the checkpoint was trained with, summed over
the example's valid tokens and divided by their count (padding ignored), exactly as `MiniMathModule.training_step`
normalises a micro-batch — with respect to a subset of the parameters, optionally preconditioned by the checkpoint's
AdamW second moments, randomly projected to `d` dimensions and L2-normalised. A candidate's influence on a target
task is then the cosine between its feature and the features of the task's reference examples (`scores`).

Why each piece:
- per-example gradients come from `torch.func` (`vmap(grad(functional_call))`): one batched pass, not a Python loop;
- the subset (`all`, `last:K`, `lora:R`) trades fidelity for cost. `lora:R` is LESS's LoRA view without training
  adapters: an adapter W + B·A with A fixed (seeded, entries N(0, 1/R)) and B = 0 has ∂L/∂B = (∂L/∂W)·Aᵀ, and
  with that A each row of (∂L/∂W)·Aᵀ is itself an unbiased Johnson–Lindenstrauss sketch of the row of ∂L/∂W. We
  compute ∂L/∂W for the attention and FFN matrices (wq, wk, wv, wo, w1, w2, w3 of every block), precondition it
  with W's own moments when asked (the adapters were never trained, so they have none), then multiply by Aᵀ;
- Adam preconditioning (g / (√v̂ + ε)) makes the feature the direction the optimizer would actually move, as LESS
  argues; v̂ is the bias-corrected second moment of the checkpoint's AdamW state;
- the projection (`ChunkedProjection`) is generated chunk by chunk from (seed, chunk index), so its memory is
  chunk_size × d whatever the parameter count, and every example meets the same matrix whatever batch it is in;
- features are cached on disk (`FeatureCache`) under the full recipe (checkpoint sha256, subset, d, seed,
  preconditioning, max_len, projection) and each text's hash, one atomically written part per batch, so an
  interrupted run resumes and a rerun recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from minimath.errors import UserError
from minimath.io import atomic_write, atomic_write_json
from minimath.loss import IGNORE_INDEX, lm_loss
from minimath.model import Transformer

PRECONDITIONS = ("none", "adam")
PROJECTIONS = ("rademacher", "gaussian")
LORA_TARGETS = (
    "attention.wq",
    "attention.wk",
    "attention.wv",
    "attention.wo",
    "feed_forward.w1",
    "feed_forward.w2",
    "feed_forward.w3",
)
CACHE_VERSION = 1


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that decides an example's feature besides the checkpoint and the text."""

    subset: str = "all"  # all | last:K | lora:R
    d: int = 512  # projected dimensions
    seed: int = 0  # the projection's and the LoRA adapters' seed
    precondition: str = "none"  # none | adam
    max_len: int = 128  # input positions per example (longer texts are truncated)
    projection: str = "rademacher"  # rademacher (±1/√d) | gaussian (N(0, 1/d))
    chunk_size: int = 65536  # gradient coordinates per projection chunk

    def __post_init__(self):
        if self.precondition not in PRECONDITIONS:
            raise UserError(f"precondition must be one of {list(PRECONDITIONS)}, not {self.precondition!r}")
        if self.projection not in PROJECTIONS:
            raise UserError(f"projection must be one of {list(PROJECTIONS)}, not {self.projection!r}")
        for name in ("d", "max_len", "chunk_size"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be a positive integer, not {getattr(self, name)}")
        parse_subset(self.subset)

    def cache_key(self, checkpoint_sha256: str) -> str:
        payload = json.dumps(
            {"checkpoint": checkpoint_sha256, **asdict(self), "version": CACHE_VERSION}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def parse_subset(spec: str) -> tuple[str, int]:
    """`all` -> ("all", 0); `last:K` -> ("last", K); `lora:R` -> ("lora", R); anything else is a UserError."""
    kind, _, number = str(spec).partition(":")
    if kind == "all" and not number:
        return "all", 0
    if kind in ("last", "lora") and number.isdigit() and int(number) > 0:
        return kind, int(number)
    raise UserError(f"subset must be all, last:K or lora:R (K, R positive integers), not {spec!r}")


def _seed_of(seed: int, label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "little")


def _seeded_generator(seed: int, label: str) -> torch.Generator:
    return torch.Generator().manual_seed(_seed_of(seed, label))


class GradientSubset:
    """Which parameters an example's gradient is taken over, and the fixed linear view applied to each gradient
    (identity, or ·Aᵀ for `lora:R`). `dim` is the feature's length before projection."""

    def __init__(self, model: Transformer, spec: str, seed: int):
        self.spec = spec
        kind, k = parse_subset(spec)
        named = dict(model.named_parameters())
        if kind == "all":
            names = list(named)
        elif kind == "last":
            if k > model.config.n_layer:
                raise UserError(f"subset={spec}: the model has only {model.config.n_layer} blocks")
            blocks = tuple(f"layers.{i}." for i in range(model.config.n_layer - k, model.config.n_layer))
            names = [n for n in named if n.startswith(blocks) or n == "norm.weight"]
        else:
            names = [n for n in named if n.removesuffix(".weight").endswith(LORA_TARGETS)]
        self.names = names
        # adapter A of each target matrix, (R, in) with entries N(0, 1/R), from (seed, parameter name)
        self.adapters = (
            {n: torch.randn(k, named[n].shape[1], generator=_seeded_generator(seed, n)) / math.sqrt(k) for n in names}
            if kind == "lora"
            else {}
        )
        self.dim = sum(named[n].shape[0] * k if kind == "lora" else named[n].numel() for n in names)

    def view(self, name: str, grads: torch.Tensor) -> torch.Tensor:
        """A batch of one parameter's gradients (batch, *shape) as the feature's coordinates (batch, m)."""
        if name in self.adapters:
            grads = grads @ self.adapters[name].T
        return grads.flatten(1)


def adam_denominators(
    checkpoint: dict, model: Transformer, names: Sequence[str], source: str
) -> dict[str, torch.Tensor]:
    """√v̂ + ε for each named parameter, from the checkpoint's AdamW state (Lightning's `optimizer_states[0]`).

    The state is keyed by position: AdamW numbers the parameters group by group in the order the module built its
    groups (`Transformer.parameter_groups`), which is also the order of each saved group's `params` list."""
    states = checkpoint.get("optimizer_states") or []
    if not states or not states[0].get("state"):
        raise UserError(
            f"{source} holds no optimizer state, so precondition=adam has no moments: use "
            f"precondition=none or a checkpoint saved during training (last.ckpt / final.ckpt)"
        )
    saved_groups, state = states[0]["param_groups"], states[0]["state"]
    groups = model.parameter_groups()
    if len(saved_groups) != len(groups) or any(len(s["params"]) != len(g[1]) for s, g in zip(saved_groups, groups)):
        raise UserError(f"{source}: its AdamW groups do not match this model's parameter groups: use precondition=none")
    name_of = {id(p): n for n, p in model.named_parameters()}
    wanted, out = set(names), {}
    for saved, (_, params, _, _) in zip(saved_groups, groups):
        beta2, eps = float(saved["betas"][1]), float(saved["eps"])
        for index, param in zip(saved["params"], params):
            name = name_of[id(param)]
            if name not in wanted:
                continue
            moments = state.get(index) if index in state else state.get(str(index))
            if not moments or moments["exp_avg_sq"].shape != param.shape:
                raise UserError(
                    f"{source}: no AdamW second moment of the right shape for {name}: use precondition=none"
                )
            step = float(moments["step"])
            v_hat = moments["exp_avg_sq"].float() / (1.0 - beta2**step)
            out[name] = v_hat.sqrt() + eps
    return out


class _ExampleLoss(nn.Module):
    """The training loss of one batch, as `MiniMathModule.training_step` computes it (without document masks)."""

    def __init__(self, model: Transformer):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        total, _ = lm_loss(self.model.hidden_states(ids), self.model.output_weight, targets)
        return total / (targets != IGNORE_INDEX).sum().clamp(min=1)


def encode_examples(tokenizer, texts: Sequence[str], max_len: int) -> tuple[list[list[int]], int, int]:
    """Each text's tokens with the end-of-text token appended (as documents are separated in training), cut to
    max_len + 1 (inputs and shifted targets); returns them, the tokens kept and how many of those were the compact
    vocabulary's unknown id (text it cannot express)."""
    examples, kept, unknown = [], 0, 0
    unk = getattr(tokenizer, "unk_id", None)
    for text in texts:
        ids = (tokenizer.encode(text) + [tokenizer.eot_id])[: max_len + 1]
        examples.append(ids)
        kept += len(ids)
        unknown += sum(1 for i in ids if i == unk) if unk is not None else 0
    return examples, kept, unknown


def batch_tensors(examples: Sequence[Sequence[int]], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (batch, max_len) padded with 0 and targets padded with IGNORE_INDEX (examples of one token: no
    valid target, a zero gradient)."""
    ids = torch.zeros(len(examples), max_len, dtype=torch.long)
    targets = torch.full((len(examples), max_len), IGNORE_INDEX, dtype=torch.long)
    for row, tokens in enumerate(examples):
        t = torch.as_tensor(list(tokens[: max_len + 1]), dtype=torch.long)
        ids[row, : len(t) - 1] = t[:-1]
        targets[row, : len(t) - 1] = t[1:]
    return ids, targets


class ChunkedProjection:
    """A Johnson–Lindenstrauss map R^n → R^d applied to coordinates streamed in order, chunk_size at a time.

    The rows of chunk c of the (n × d) matrix are drawn from a generator seeded by (seed, c): Rademacher ±1/√d or
    Gaussian N(0, 1/d), so E⟨Pu, Pv⟩ = ⟨u, v⟩. Only one chunk's rows (chunk_size × d) and one chunk of each
    example's coordinates exist at a time; the matrix — and so the result, up to float summation order — is the
    same whether the coordinates arrive in one piece or many, and whatever the batch."""

    def __init__(self, d: int, seed: int, kind: str = "rademacher", chunk_size: int = 65536):
        self.d, self.seed, self.kind, self.chunk_size = d, seed, kind, chunk_size

    def matrix(self, chunk: int, rows: int | None = None) -> torch.Tensor:
        """The first `rows` rows (default all) of chunk `chunk` of the projection matrix."""
        rows, label = self.chunk_size if rows is None else rows, f"projection-{chunk}"
        if self.kind == "gaussian":
            return torch.randn(rows, self.d, generator=_seeded_generator(self.seed, label)).div_(math.sqrt(self.d))
        # one random bit per entry, unpacked from PCG64's bytes: ~4× faster than torch's per-element draws, and
        # generating the matrix is most of a batch's cost at d ≥ 256
        n = rows * self.d
        bits = np.unpackbits(
            np.frombuffer(np.random.default_rng(_seed_of(self.seed, label)).bytes(-(-n // 8)), dtype=np.uint8), count=n
        )
        signs = torch.from_numpy(bits.reshape(rows, self.d)).float()
        return signs.mul_(2.0 / math.sqrt(self.d)).sub_(1.0 / math.sqrt(self.d))

    def project(self, pieces: Iterator[torch.Tensor], batch: int) -> torch.Tensor:
        """Σ_c x_c · P_c for coordinates arriving as pieces (batch, m_i), in order; returns (batch, d)."""
        out = torch.zeros(batch, self.d, dtype=torch.float32)
        buffer, filled, chunk = torch.empty(batch, self.chunk_size), 0, 0
        for piece in pieces:
            piece = piece.float()
            while piece.shape[1]:
                take = min(self.chunk_size - filled, piece.shape[1])
                buffer[:, filled : filled + take] = piece[:, :take]
                filled, piece = filled + take, piece[:, take:]
                if filled == self.chunk_size:
                    out.addmm_(buffer, self.matrix(chunk))
                    filled, chunk = 0, chunk + 1
        if filled:
            out.addmm_(buffer[:, :filled], self.matrix(chunk, filled))
        return out


class FeatureExtractor:
    """Projected, normalised per-example gradient features of one model (`FeatureSpec`)."""

    def __init__(self, model: Transformer, spec: FeatureSpec, checkpoint: dict | None = None, source: str = ""):
        if spec.max_len > model.config.max_seq_len:
            raise UserError(
                f"max_len={spec.max_len} exceeds the model's context of {model.config.max_seq_len}: lower max_len"
            )
        self.model, self.spec = model.eval(), spec
        self.subset = GradientSubset(model, spec.subset, spec.seed)
        self.denominators = {}
        if spec.precondition == "adam":
            self.denominators = adam_denominators(checkpoint or {}, model, self.subset.names, source)
        self.projection = ChunkedProjection(spec.d, spec.seed, spec.projection, spec.chunk_size)
        self._loss = _ExampleLoss(model)
        params = {f"model.{n}": p.detach() for n, p in model.named_parameters()}
        self._trained = {k: params.pop(f"model.{k}") for k in self.subset.names}
        self._frozen = params

    def _example_loss(self, trained: dict, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        params = {**self._frozen, **{f"model.{k}": v for k, v in trained.items()}}
        return functional_call(self._loss, params, (ids[None], targets[None]))

    def gradients(self, ids: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example gradients of the subset's parameters, {name: (batch, *shape)}, in one vmapped pass. The fused
        CPU attention kernel has no batching rule, so vmap runs it per example (and warns); the math kernel, which
        has one, measured slower on 2 cores, so the warning is silenced rather than the kernel changed."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*batching rule.*")
            return vmap(grad(self._example_loss), in_dims=(None, 0, 0))(self._trained, ids, targets)

    def features(self, examples: Sequence[Sequence[int]]) -> torch.Tensor:
        """(len(examples), d) unit-norm features of token sequences (as `encode_examples` returns them)."""
        ids, targets = batch_tensors(examples, self.spec.max_len)
        return self.project(self.gradients(ids, targets), len(examples))

    def project(self, grads: dict[str, torch.Tensor], batch: int) -> torch.Tensor:
        """(batch, d) unit-norm features of per-example gradients {name: (batch, *shape)} (consumed: each is freed
        once projected)."""

        def pieces():
            for name in self.subset.names:
                g = grads.pop(name)  # freed as soon as it is projected
                if name in self.denominators:
                    g = g / self.denominators[name]
                yield self.subset.view(name, g)

        projected = self.projection.project(pieces(), batch)
        return projected / projected.norm(dim=1, keepdim=True).clamp(min=1e-12)


class FeatureCache:
    """Features on disk under one recipe key: `<dir>/<key>/part-<n>.npz`, each holding the text hashes and the
    features of one computed batch, written atomically (a part is whole or absent), plus `key.json` saying what
    the key stands for. `get` reads every part once; `put` adds one part."""

    def __init__(self, directory: Path, key: str, describe: dict):
        self.dir = Path(directory) / key
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "key.json").is_file():
            atomic_write_json(self.dir / "key.json", describe)
        self._features: dict[str, np.ndarray] = {}
        self._parts = 0
        for part in sorted(self.dir.glob("part-*.npz")):
            with np.load(part, allow_pickle=False) as data:
                self._features.update(zip(data["hashes"].tolist(), data["features"]))
            self._parts += 1

    def __contains__(self, text_hash: str) -> bool:
        return text_hash in self._features

    def __len__(self) -> int:
        return len(self._features)

    def get(self, text_hash: str) -> np.ndarray:
        return self._features[text_hash]

    def put(self, hashes: Sequence[str], features: np.ndarray) -> None:
        hashes_array = np.asarray(list(hashes), dtype=str)
        name = f"part-{self._parts:06d}-{hashlib.sha256(''.join(hashes).encode()).hexdigest()[:8]}.npz"
        atomic_write(self.dir / name, lambda f: np.savez(f, hashes=hashes_array, features=features))
        self._parts += 1
        self._features.update(zip(hashes, features))


def cosine_scores(candidates: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For unit-norm rows: each candidate's mean and max cosine to the reference rows."""
    similarity = candidates.astype(np.float64) @ reference.astype(np.float64).T
    return similarity.mean(axis=1), similarity.max(axis=1)


def cached_features(
    extractor: FeatureExtractor,
    cache: FeatureCache,
    hashes: Sequence[str],
    examples: Sequence[Sequence[int]],
    batch_size: int,
    on_batch=None,
) -> tuple[np.ndarray, int]:
    """Features of every example (rows in the order given), computing only those whose text hash the cache lacks,
    `batch_size` at a time, each batch stored before the next starts; `on_batch(n)` is told after each. Returns
    the features and how many were computed."""
    todo, seen = [], set()
    for h, ex in zip(hashes, examples):
        if h not in cache and h not in seen:
            seen.add(h)
            todo.append((h, ex))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        features = extractor.features([ex for _, ex in batch]).numpy()
        cache.put([h for h, _ in batch], features)
        if on_batch is not None:
            on_batch(len(batch))
    return np.stack([cache.get(h) for h in hashes]) if hashes else np.zeros((0, extractor.spec.d), np.float32), len(
        todo
    )
