"""Memory and time of a training step per rank, from the config alone: what `dry_run` prints.

Memory is what a rank's step keeps alive, in bytes, counted from the code rather than measured:
- fp32 master weights, their gradients and AdamW's two fp32 moments (4 + 4 + 8 bytes per parameter), each divided
  by the world size under FSDP, whole on every rank otherwise;
- activations: what autograd saves for backward (`block_activations`, `outside_activations`: a closed form of the
  model's shape, per token of the micro-batch);
- on top, the largest working set of the step: the chunked loss's block of logits and its output-layer gradients
  (`minimath.loss`), or, with activation checkpointing, the block being recomputed in backward.
The gradients are counted whole through the step: with gradient accumulation the earlier micro-batches' gradients
are held while the next one runs forward (without accumulation the peak is lower by up to the gradients).
The check lives here too, beside what it checks: `measured_peak` runs real steps on this CPU and counts their live
tensor storage exactly (`LiveTensors`); tests/test_planner.py compares it with the predicted peak at `CHECK_SHAPES`
(and the closed forms with autograd's saved tensors), experiments/benchmarks/planner_check.py prints the table. Not
counted: the CUDA context, NCCL buffers,
allocator fragmentation, FSDP's gathered parameters and unsharded gradients (about a block at a time when each block
is wrapped; the whole model under a strategy without a wrap policy), and attention masks (causal attention is
assumed: a `document_mask` stage also keeps a mask of seq_len² booleans per sequence).

Time is FLOPs over a stated utilisation: tokens × FLOPs per token (`minimath.flops`, output layer included) ÷
(ranks × peak FLOP/s × planned MFU); activation checkpointing adds one forward of the blocks (a third of their FLOPs).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from minimath.errors import UserError
from minimath.flops import flops_per_token, peak_flops
from minimath.loss import lm_loss
from minimath.model import ModelConfig, Transformer, count_params
from minimath.synthesis.progress import duration

if TYPE_CHECKING:
    from minimath.training import RunPlan

FP32 = 4  # master weights, gradients, AdamW moments; RMSNorm and the residual stream under autocast too
ADAMW_MOMENTS = 2
INPUT_IDS = 8  # int64 token ids, kept by the embedding (and targets by plain cross-entropy) for backward
GIB = 2**30
LOW_PRECISION = {"32-true": 4, "bf16-mixed": 2, "16-mixed": 2}  # bytes per element the matmuls produce


@dataclass(frozen=True)
class StepShape:
    """What one rank runs: the model, the micro-batch, how it computes, and over how many ranks its training state is
    sharded (FSDP: the world size; DDP or one device: 1)."""

    model: ModelConfig
    micro_batch: int
    seq_len: int
    precision: str  # 32-true, bf16-mixed or 16-mixed
    shards: int = 1
    loss_chunk_bytes: int | None = None  # train.loss_chunk_bytes; None: plain cross-entropy over all logits

    @property
    def tokens(self) -> int:
        return self.micro_batch * self.seq_len

    @property
    def low(self) -> int:
        """Bytes per element of what the matmuls produce: 4 in fp32, 2 under autocast."""
        return LOW_PRECISION[self.precision]


@dataclass(frozen=True)
class StepMemory:
    """Bytes one rank holds: training state, activations at the end of forward, and the peak of the step."""

    params: int
    grads: int
    optimizer: int
    activations: int
    peak: int

    @property
    def state(self) -> int:
        return self.params + self.grads + self.optimizer


def block_activations(model: ModelConfig, low: int) -> int:
    """Bytes one block (`model.Block`) saves for backward per token.

    In fp32 whatever the precision (RMSNorm normalises in fp32 and the residual stream it reads stays fp32 under
    autocast): each norm's input, its normalised output and 1/rms, and the attention's log-sum-exp per head. In the
    matmuls' dtype (`low`): the projections' inputs (one tensor in fp32; under autocast wq, wk, wv, w1 and w3 each keep
    their own cast copy), the rotated queries and keys, the values, the attention output and the contiguous copy wo
    reads, and SwiGLU's four hidden-size tensors (w1·x, w3·x, silu(w1·x) and the product w2 reads). With qk_norm each
    head's queries and keys also keep their fp32 input, normalised output and 1/rms."""
    d, kv, f = model.n_embd, model.n_kv_head * model.head_dim, model.ffn_hidden
    projection_inputs = 2 * d if low == FP32 else 5 * d
    in_low = projection_inputs + 3 * d + 2 * kv + 4 * f
    in_fp32 = 2 * (2 * d + 1) + model.n_head
    qk_norm = (FP32 + low) * (d + kv) + FP32 * (model.n_head + model.n_kv_head) if model.qk_norm else 0
    return low * in_low + FP32 * in_fp32 + qk_norm


def outside_activations(shape: StepShape) -> int:
    """Bytes saved per token outside the blocks: the input ids, the final norm's input, normalised output and 1/rms,
    and the loss's: the chunked loss keeps the gradient of the final hidden states (fp32); plain cross-entropy keeps
    its input (cast under autocast), the fp32 log-probabilities over the whole vocabulary and the targets."""
    d = shape.model.n_embd
    loss = FP32 * d if shape.loss_chunk_bytes else shape.low * d + FP32 * shape.model.vocab_size + INPUT_IDS
    return INPUT_IDS + FP32 * (2 * d + 1) + loss


def output_layer_saved(shape: StepShape) -> int:
    """Bytes the loss saves whatever the micro-batch: the chunked loss computes the (tied) output weight's fp32
    gradient in forward and keeps it for backward, whole on every rank; plain cross-entropy under autocast keeps the
    low-precision copy of the output weight its matmul read."""
    vd = shape.model.vocab_size * shape.model.n_embd
    if shape.loss_chunk_bytes:
        return FP32 * vd
    return 0 if shape.low == FP32 else shape.low * vd


def block_backward(shape: StepShape) -> int:
    """Bytes per token a block's backward allocates beyond what it saved: two hidden-size gradients at once (of the
    SwiGLU product, then of its two factors)."""
    return 2 * shape.low * shape.model.ffn_hidden


def chunk_rows(shape: StepShape) -> int:
    """Positions per block of logits, as `loss.chunk_positions` picks them; all of them without chunking."""
    if not shape.loss_chunk_bytes:
        return shape.tokens
    return min(shape.tokens, max(1, shape.loss_chunk_bytes // (shape.model.vocab_size * shape.low)))


def block_matrices(model: ModelConfig) -> int:
    d, kv = model.n_embd, model.n_kv_head * model.head_dim
    return 2 * d * d + 2 * d * kv + 3 * d * model.ffn_hidden


def weight_copies(shape: StepShape) -> int:
    """Autocast's low-precision copies of the blocks' matrices, cached through the forward pass (and kept by the
    matmuls for backward unless the blocks are recomputed); none in fp32."""
    return 0 if shape.low == FP32 else shape.low * shape.model.n_layer * block_matrices(shape.model)


def loss_working(shape: StepShape) -> tuple[int, int]:
    """(forward, backward) bytes the loss allocates beyond what it saves.

    Chunked: forward holds the final hidden states (fp32) and, under autocast, their low-precision copy and the output
    weight's; then two blocks of logits at once (the next chunk's is computed while the previous one's is still
    referenced), or one block and its rows' gradient for the hidden states (under autocast: for the output weight, a
    whole low-precision vocab × n_embd matrix). Backward scales the two saved gradients into new tensors. Plain: the
    logits (and their fp32 copy under autocast) in forward; in backward the gradients of the log-probabilities and of
    the logits."""
    m, tokens, low = shape.model, shape.tokens, shape.low
    vd = m.vocab_size * m.n_embd
    mixed = low != FP32
    if not shape.loss_chunk_bytes:
        forward = tokens * m.vocab_size * (low + (FP32 if mixed else 0))
        return forward, 2 * tokens * m.vocab_size * FP32
    rows = chunk_rows(shape)
    block = rows * m.vocab_size * low
    blocks_at_once = 2 if rows < tokens else 1
    gradient = low * max(rows * m.n_embd, vd) if mixed else FP32 * rows * m.n_embd
    held = tokens * m.n_embd * (FP32 + (low if mixed else 0)) + (low * vd if mixed else 0)
    return held + max(blocks_at_once * block, block + gradient), FP32 * (vd + tokens * m.n_embd)


def step_memory(shape: StepShape, checkpointing: bool) -> StepMemory:
    """Training state, activations and the peak of one rank's step at `shape`, with or without activation
    checkpointing (each block keeps only its fp32 input and is recomputed in backward).

    The peak is the largest of four moments, each on top of the training state: the loss's forward (every
    activation saved, autocast's weight copies cached, the loss's working set); the loss's backward; the backward
    of the last block (the loss's and final norm's tensors freed, the output layer's gradient waiting for the tied
    embedding's to be added to it; with checkpointing the block recomputed); the embedding's backward (the tied
    weight's two gradients and their sum)."""
    m, tokens = shape.model, shape.tokens
    per_rank = -(-count_params(m)["total"] // shape.shards)
    params, grads, optimizer = FP32 * per_rank, FP32 * per_rank, ADAMW_MOMENTS * FP32 * per_rank
    block = block_activations(m, shape.low)
    inputs = FP32 * m.n_embd  # what a checkpointed block keeps: its input, from the fp32 residual stream
    copies = weight_copies(shape)
    loss_forward, loss_backward = loss_working(shape)
    if checkpointing:
        blocks, held_copies = tokens * m.n_layer * inputs, 0
        last_block = tokens * (block + block_backward(shape)) + copies // m.n_layer
    else:
        blocks, held_copies = tokens * m.n_layer * block, copies
        last_block = tokens * block_backward(shape)
    activations = blocks + held_copies + tokens * outside_activations(shape) + output_layer_saved(shape)
    output_grad = FP32 * m.vocab_size * m.n_embd
    moments = (
        activations - held_copies + copies + loss_forward,
        activations + loss_backward,
        blocks + held_copies + tokens * INPUT_IDS + last_block + output_grad,
        tokens * INPUT_IDS + 3 * output_grad,
    )
    return StepMemory(params, grads, optimizer, activations, params + grads + optimizer + max(moments))


def largest_micro_batch(shape: StepShape, checkpointing: bool, budget_bytes: float) -> int:
    """The most sequences per micro-batch whose step peaks within `budget_bytes` (0: not even one fits)."""

    def fits(micro_batch: int) -> bool:
        return step_memory(replace(shape, micro_batch=micro_batch), checkpointing).peak <= budget_bytes

    if not fits(1):
        return 0
    low, high = 1, 2
    while fits(high):
        low, high = high, 2 * high
    while high - low > 1:  # fits(low), not fits(high): the peak grows with the micro-batch
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def training_seconds(tokens: int, flops_per_token: float, ranks: int, peak: float, mfu: float) -> float:
    """Wall-clock seconds to train `tokens` at `mfu` of `peak` FLOP/s per rank."""
    return tokens * flops_per_token / (ranks * peak * mfu)


def check_settings(gpu_memory_gib: float | None, planned_mfu: float) -> None:
    """The planner's settings, checked where they are read (the dry run)."""
    if gpu_memory_gib is not None and not gpu_memory_gib > 0:
        raise UserError(
            f"hardware.gpu_memory_gib={gpu_memory_gib:g}: the memory of one GPU in GiB (80 for an H100 80 GB, 141 "
            f"for an H200), or null for no micro-batch fit"
        )
    if not 0 < planned_mfu <= 1:
        raise UserError(
            f"hardware.planned_mfu={planned_mfu:g}: the fraction of the peak FLOP/s the time plan assumes, in (0, 1] "
            f"(e.g. 0.4)"
        )


def sharded(strategy) -> bool:
    """Whether `hardware.strategy` shards the training state over the ranks: Lightning's FSDP by name (`fsdp`), or an
    object config whose `_target_` is a sharding strategy class (`minimath.parallel.FSDP2`, Lightning's FSDP or
    model-parallel strategies)."""
    from hydra.utils import get_class

    from minimath.callbacks.shared import SHARDING_STRATEGIES

    if hasattr(strategy, "get"):
        return issubclass(get_class(str(strategy.get("_target_"))), SHARDING_STRATEGIES)
    return str(strategy).startswith("fsdp")


def size(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.2f} GiB" if n_bytes >= GIB else f"{n_bytes / 2**20:.1f} MiB"


@dataclass(frozen=True)
class ResourcePlan:
    """What one rank of a stage needs, from the config alone: memory with and without activation checkpointing, the
    largest micro-batch that fits one GPU, and the stage's time at a planned MFU. Printed by `dry_run`."""

    shape: StepShape
    unit: str  # what a rank is: GPU, or process on a CPU
    ranks: int
    checkpointing: bool  # hardware.activation_checkpointing: which of the two the run uses
    plain: StepMemory
    recomputed: StepMemory
    gpu_memory_gib: float | None
    tokens: int
    flops_per_token: float  # forward and backward, output layer included
    recompute_flops_per_token: float  # with activation checkpointing the blocks run forward again: a third of theirs
    peak_flops: float | None  # per rank (hardware.peak_tflops; null: no time plan)
    planned_mfu: float

    @classmethod
    def of_stage(cls, model: ModelConfig, run: RunPlan, hardware, loss_chunk_bytes: int | None) -> ResourcePlan:
        """The plan of a stage that `training.plan_run` planned as `run`, on the config's `hardware` section."""
        shards = run.world_size if sharded(hardware.strategy) else 1
        shape = StepShape(model, run.micro_batch, run.seq_len, run.precision, shards, loss_chunk_bytes)
        flops = flops_per_token(model, run.seq_len)
        return cls(
            shape=shape,
            unit="GPU" if run.device in ("gpu", "cuda") else "process",
            ranks=run.world_size,
            checkpointing=bool(hardware.activation_checkpointing),
            plain=step_memory(shape, checkpointing=False),
            recomputed=step_memory(shape, checkpointing=True),
            gpu_memory_gib=hardware.gpu_memory_gib,
            tokens=run.tokens,
            flops_per_token=flops.total,
            recompute_flops_per_token=flops.transformer / 3,
            peak_flops=peak_flops(hardware.peak_tflops, run.precision),
            planned_mfu=float(hardware.planned_mfu),
        )

    def block(self) -> str:
        shape, plain, recomputed = self.shape, self.plain, self.recomputed
        where = f"sharded /{shape.shards}" if shape.shards > 1 else "whole on each rank"
        mark = {self.checkpointing: " (this run)", not self.checkpointing: ""}
        lines = [
            f"  memory per {self.unit}, micro-batch {shape.micro_batch} x {shape.seq_len} tokens, {shape.precision} "
            f"(fp32 weights, grads and AdamW moments {where}):",
            f"    params {size(plain.params)} + grads {size(plain.grads)} + AdamW {size(plain.optimizer)} = "
            f"{size(plain.state)}",
            f"    activation checkpointing off{mark[False]}: activations {size(plain.activations)}, "
            f"peak {size(plain.peak)}",
            f"    activation checkpointing on{mark[True]}: activations {size(recomputed.activations)}, "
            f"peak {size(recomputed.peak)}",
        ]
        if self.gpu_memory_gib is not None:
            budget = self.gpu_memory_gib * GIB
            lines.append(
                f"    largest micro-batch in {self.gpu_memory_gib:g} GiB: {largest_micro_batch(shape, False, budget)} "
                f"sequences, {largest_micro_batch(shape, True, budget)} with activation checkpointing (tensors alone)"
            )
        if self.peak_flops is not None:
            plain_s, recomputed_s = (
                training_seconds(self.tokens, flops, self.ranks, self.peak_flops, self.planned_mfu)
                for flops in (self.flops_per_token, self.flops_per_token + self.recompute_flops_per_token)
            )
            lines.append(
                f"  time at MFU {self.planned_mfu:g} of {self.peak_flops / 1e12:.3g} TFLOP/s x {self.ranks} "
                f"{self.unit}(s): {self.tokens:,} tokens x {self.flops_per_token / 1e9:.4g} GFLOP/token = "
                f"{duration(plain_s)}; {duration(recomputed_s)} with activation checkpointing"
            )
        return "\n".join(lines)


class LiveTensors(TorchDispatchMode):
    """Bytes of tensor storage alive while the mode is on, exactly: each storage an op creates counts from its
    creation to its release (unlike RSS, which the allocator and other threads blur). `peak`: the most at once."""

    def __init__(self, tensors: list[torch.Tensor]):
        super().__init__()
        self.live = self.peak = 0
        self._bytes: dict[int, int] = {}
        for t in tensors:  # what exists already: parameters, buffers, batches
            self._count(t)

    def _count(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = id(storage)  # storages keep their Python object while alive, so the id is theirs until released
        if key in self._bytes:
            return
        self._bytes[key] = storage.nbytes()
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        self.live -= self._bytes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self._count(t)
        return out


def measured_peak(shape: StepShape, checkpointing: bool, steps: int = 2, accumulate: int = 2) -> int:
    """Peak bytes of live tensors over `steps` optimizer steps of `accumulate` micro-batches each at `shape` on this
    CPU (one rank), run as `MiniMathModule` trains: the transformer's hidden states, `lm_loss` (chunked by
    `shape.loss_chunk_bytes`) under autocast for a mixed precision, backward, AdamW over the model's parameter groups,
    gradients set to None after each step. Everything counts: parameters, batches, AdamW moments, activations and
    every temporary."""
    torch.manual_seed(0)
    model = Transformer(shape.model)
    model.activation_checkpointing = checkpointing
    groups = [{"params": params, "weight_decay": 0.1 * decays} for _, params, _, decays in model.parameter_groups()]
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    dims = (shape.micro_batch, shape.seq_len)
    batches = [(torch.randint(shape.model.vocab_size, dims), torch.randint(shape.model.vocab_size, dims))]
    batches *= accumulate
    tracker = LiveTensors([*model.parameters(), *model.buffers(), *batches[0]])
    with tracker:
        for _ in range(steps):
            for ids, targets in batches:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=shape.low != FP32):
                    hidden = model.hidden_states(ids)
                    total, _ = lm_loss(hidden, model.output_weight, targets, chunk_bytes=shape.loss_chunk_bytes)
                    del hidden  # as when training_step returns: the loss's working set is its own
                (total / targets.numel()).backward()
            optimizer.step()
            optimizer.zero_grad()
    return tracker.peak


CHECK_SHAPES = {  # two small sizes the peak is checked at, a few seconds each on a CPU (fp32; chunked loss)
    "4 layers x 128, vocab 4096, 4 x 256 tokens": StepShape(
        ModelConfig(vocab_size=4096, n_layer=4, n_head=4, n_kv_head=4, n_embd=128, ffn_hidden=512, max_seq_len=256),
        micro_batch=4,
        seq_len=256,
        precision="32-true",
        loss_chunk_bytes=2**22,
    ),
    "2 layers x 256, GQA 8/2 heads, vocab 8192, 2 x 512 tokens": StepShape(
        ModelConfig(vocab_size=8192, n_layer=2, n_head=8, n_kv_head=2, n_embd=256, ffn_hidden=704, max_seq_len=512),
        micro_batch=2,
        seq_len=512,
        precision="32-true",
        loss_chunk_bytes=2**22,
    ),
}
