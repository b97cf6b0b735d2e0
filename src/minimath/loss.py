"""Next-token loss through the tied output layer, normalised by the number of valid (non-ignored) targets.

Two implementations with the same result:
- plain: logits for every position, then cross-entropy (autograd keeps the (tokens × vocab) logits and their
  gradient alive: ~5.7 GiB at batch 8×256 with Qwen's 151,936-row vocabulary);
- chunked: `ChunkedLinearCrossEntropy` walks the positions in chunks, computes each chunk's loss *and* its
  gradients with respect to the hidden states and the output weight inside the forward pass, and keeps only
  those gradients, so at most one (chunk × vocab) block of logits exists at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_losses(hidden: torch.Tensor, output_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every position (batch, seq), 0 where the target is IGNORE_INDEX (padding).

    Logits are computed in fp32 so that a bf16 model still gets an exact softmax over the large vocabulary.
    """
    return _row_losses(F.linear(hidden, output_weight).float(), targets)


def _row_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none")
    return losses.view_as(targets)


def _softmax_cross_entropy_(
    logits: torch.Tensor, targets: torch.Tensor, z_loss: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row cross-entropies (fp32), per-row z-loss terms `z_loss · log²Z` (fp32), and d(sum of both)/d(logits),
    computed in the logits' own memory.

    The gradient is softmax · (1 + 2·z_loss·log Z) − one_hot(target) on valid rows, 0 on ignored ones. Four
    passes over the block: max, exp(x − max), row sums, scale; no (rows × vocab) temporaries.
    """
    valid = targets != IGNORE_INDEX
    safe_t = torch.where(valid, targets, 0)
    row_max = logits.amax(dim=-1, keepdim=True)
    target_logit = logits.gather(1, safe_t[:, None]).squeeze(1).float()
    probs = logits.sub_(row_max).exp_()
    sums = probs.sum(dim=-1).float()  # accumulated in fp32 inside the kernel (a dtype= argument is 10x slower)
    log_z = row_max.squeeze(1).float() + sums.log()
    losses = torch.where(valid, log_z - target_logit, 0.0)
    z_terms = torch.where(valid, z_loss * log_z.square(), 0.0)
    probs.mul_((valid * (1.0 + 2.0 * z_loss * log_z) / sums).to(probs.dtype)[:, None])
    probs[torch.arange(len(targets), device=targets.device), safe_t] -= valid.to(probs.dtype)
    return losses, z_terms, probs


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropies of `hidden @ weight.T` against `targets` (plus `z_loss · Σ log²Z`, PaLM's z-loss, with
    its gradient), and the per-position cross-entropies (no grad).

    `dtype` is the dtype of the matmuls and of the logits block (bf16 under autocast: AMX/tensor cores); the
    softmax statistics and the loss are accumulated in fp32 and the weight's gradient is summed in fp32.
    """

    @staticmethod
    def forward(
        ctx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        chunk: int,
        dtype: torch.dtype,
        z_loss: float = 0.0,
    ):
        n = hidden.shape[0]
        losses = torch.zeros(n, dtype=torch.float32, device=hidden.device)
        z_terms = torch.zeros(n, dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if ctx.needs_input_grad[1] else None
        )
        with torch.autocast(hidden.device.type, enabled=False):
            w, x = weight.to(dtype), hidden.to(dtype)
            # one block of logits for every chunk: a fresh (chunk × vocab) tensor per chunk is a fresh mmap on a CPU
            # (glibc maps allocations over 32 MiB anew each time) and pays its page faults again; with one block the
            # fp32 loss ran 1.05-1.06x faster (experiments/benchmarks/loss_block_reuse.py)
            block = torch.empty(min(chunk, n), weight.shape[0], dtype=dtype, device=hidden.device)
            for start in range(0, n, chunk):
                h, t = x[start : start + chunk], targets[start : start + chunk]
                logits = torch.mm(h, w.T, out=block[: len(h)])
                losses[start : start + chunk], z_terms[start : start + chunk], grad_logits = _softmax_cross_entropy_(
                    logits, t, z_loss
                )
                if grad_hidden is not None:
                    grad_hidden[start : start + chunk] = grad_logits @ w
                if grad_weight is None:
                    continue
                if dtype == torch.float32:
                    grad_weight.addmm_(grad_logits.T, h)
                else:  # CPUs have no mixed-dtype addmm: a low-precision block product, summed in fp32
                    grad_weight.add_(grad_logits.T @ h)
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(losses)
        return losses.sum() + z_terms.sum(), losses

    @staticmethod
    def backward(ctx, grad_sum: torch.Tensor, _grad_losses):
        grad_hidden, grad_weight = ctx.saved_tensors
        gh = grad_hidden * grad_sum.to(grad_hidden.dtype) if grad_hidden is not None else None
        gw = (grad_weight * grad_sum).to(ctx.weight_dtype) if grad_weight is not None else None
        return gh, gw, None, None, None, None


def matmul_dtype(hidden: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """The dtype autocast would give `hidden @ weight.T` here: its low-precision dtype when it is on."""
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return torch.promote_types(hidden.dtype, weight.dtype)


def chunk_positions(budget_bytes: int, vocab_size: int, dtype: torch.dtype) -> int:
    """Positions per chunk so that one chunk's block of logits takes at most `budget_bytes`."""
    return max(1, budget_bytes // (vocab_size * dtype.itemsize))


def lm_loss(
    hidden: torch.Tensor,
    output_weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int | None = None,
    chunk_bytes: int | None = None,
    z_loss: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over valid positions of the cross-entropy + `z_loss · log²Z`, with gradient; per-position
    cross-entropies (batch, seq), detached — what is logged).

    Through `ChunkedLinearCrossEntropy`, `chunk_size` positions at a time, or as many as keep one chunk's logits
    within `chunk_bytes` in the matmul dtype; neither: the plain path.
    """
    if chunk_size is None and chunk_bytes is None:
        logits = F.linear(hidden, output_weight).float()
        losses = _row_losses(logits, targets)
        total = losses.sum()
        if z_loss:
            valid = targets != IGNORE_INDEX
            total = total + z_loss * torch.logsumexp(logits, dim=-1).square().masked_fill(~valid, 0.0).sum()
        return total, losses.detach()
    dtype = matmul_dtype(hidden, output_weight)
    if chunk_size is None:
        chunk_size = chunk_positions(chunk_bytes, output_weight.shape[0], dtype)
    total, losses = ChunkedLinearCrossEntropy.apply(
        hidden.flatten(0, 1), output_weight, targets.flatten(), int(chunk_size), dtype, float(z_loss)
    )
    return total, losses.view_as(targets)


def next_token_loss(
    hidden: torch.Tensor, output_weight: torch.Tensor, targets: torch.Tensor, chunk_size: int | None = None
) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over valid targets divided by their count, and that count."""
    n_valid = int((targets != IGNORE_INDEX).sum())
    total, _ = lm_loss(hidden, output_weight, targets, chunk_size)
    return total / max(n_valid, 1), n_valid
