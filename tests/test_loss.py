import torch
import torch.nn.functional as F

from minimath.loss import IGNORE_INDEX, next_token_loss


def test_loss_is_mean_over_valid_tokens_only():
    torch.manual_seed(0)
    hidden, weight = torch.randn(2, 5, 8), torch.randn(11, 8)
    targets = torch.randint(0, 11, (2, 5))
    targets[1, 3:] = IGNORE_INDEX
    loss, n_valid = next_token_loss(hidden, weight, targets)
    logits = hidden @ weight.T
    keep = targets != IGNORE_INDEX
    expected = F.cross_entropy(logits[keep], targets[keep])
    assert n_valid == 8
    assert torch.allclose(loss, expected)


def test_padding_does_not_change_the_loss():
    torch.manual_seed(1)
    hidden, weight = torch.randn(1, 4, 8), torch.randn(7, 8)
    targets = torch.tensor([[1, 2, 3, 4]])
    padded_hidden = torch.cat([hidden, torch.randn(1, 3, 8)], dim=1)
    padded_targets = torch.tensor([[1, 2, 3, 4, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    assert torch.allclose(next_token_loss(hidden, weight, targets)[0],
                          next_token_loss(padded_hidden, weight, padded_targets)[0])


def test_all_padding_gives_zero_not_nan():
    loss, n_valid = next_token_loss(torch.randn(1, 3, 4), torch.randn(5, 4), torch.full((1, 3), IGNORE_INDEX))
    assert n_valid == 0 and loss.item() == 0.0
