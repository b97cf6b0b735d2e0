"""Next-token loss, normalised by the number of valid (non-ignored) target tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def next_token_loss(hidden: torch.Tensor, output_weight: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over valid targets divided by their count, and that count.

    `targets` holds IGNORE_INDEX where there is nothing to predict (padding). Logits are computed in fp32 so
    that a bf16 model still gets an exact softmax over the large vocabulary.
    """
    logits = F.linear(hidden, output_weight).float()
    n_valid = int((targets != IGNORE_INDEX).sum())
    loss_sum = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    return loss_sum / max(n_valid, 1), n_valid
