"""Next-token loss, normalised by the number of valid (non-ignored) target tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_losses(hidden: torch.Tensor, output_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every position (batch, seq), 0 where the target is IGNORE_INDEX (padding).

    Logits are computed in fp32 so that a bf16 model still gets an exact softmax over the large vocabulary.
    """
    logits = F.linear(hidden, output_weight).float()
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none")
    return losses.view_as(targets)


def next_token_loss(hidden: torch.Tensor, output_weight: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over valid targets divided by their count, and that count."""
    n_valid = int((targets != IGNORE_INDEX).sum())
    return token_losses(hidden, output_weight, targets).sum() / max(n_valid, 1), n_valid
