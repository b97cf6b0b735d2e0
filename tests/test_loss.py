import pytest
import torch
import torch.nn.functional as F

from minimath.loss import IGNORE_INDEX, chunk_positions, lm_loss, matmul_dtype, next_token_loss


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
    for chunk in (None, 2):
        assert torch.allclose(
            next_token_loss(hidden, weight, targets, chunk)[0],
            next_token_loss(padded_hidden, weight, padded_targets, chunk)[0],
        )


def test_all_padding_gives_zero_not_nan():
    for chunk in (None, 2):
        loss, n_valid = next_token_loss(
            torch.randn(1, 3, 4), torch.randn(5, 4), torch.full((1, 3), IGNORE_INDEX), chunk
        )
        assert n_valid == 0 and loss.item() == 0.0


@pytest.mark.parametrize("chunk", [1, 3, 5, 7, 64])  # 21 positions: 5 leaves a last chunk of 1 in the reused block
def test_chunked_loss_and_gradients_equal_plain_autograd(chunk):
    torch.manual_seed(chunk)
    hidden = torch.randn(3, 7, 16, requires_grad=True)
    weight = torch.randn(97, 16, requires_grad=True)
    targets = torch.randint(0, 97, (3, 7))
    targets[2, 4:] = IGNORE_INDEX
    plain, plain_losses = lm_loss(hidden, weight, targets)
    grads_plain = torch.autograd.grad(plain * 0.3, (hidden, weight))
    chunked, chunked_losses = lm_loss(hidden, weight, targets, chunk_size=chunk)
    grads_chunked = torch.autograd.grad(chunked * 0.3, (hidden, weight))
    assert torch.allclose(plain, chunked, rtol=1e-5)
    assert torch.allclose(plain_losses, chunked_losses, atol=1e-5)
    for a, b in zip(grads_plain, grads_chunked):
        assert torch.allclose(a, b, atol=1e-5)


def test_chunked_loss_with_a_tied_embedding_accumulates_both_gradients():
    """The output weight is also the embedding: autograd must add the loss's gradient to the lookup's."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(31, 8)
    idx, targets = torch.randint(0, 31, (2, 5)), torch.randint(0, 31, (2, 5))
    grads = []
    for chunk in (None, 4):
        emb.zero_grad()
        total, _ = lm_loss(torch.tanh(emb(idx)), emb.weight, targets, chunk)
        total.backward()
        grads.append(emb.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_bf16_chunked_loss_runs_on_cpu():
    hidden = torch.randn(2, 6, 16, dtype=torch.bfloat16, requires_grad=True)
    weight = torch.randn(50, 16, dtype=torch.bfloat16, requires_grad=True)
    total, losses = lm_loss(hidden, weight, torch.randint(0, 50, (2, 6)), chunk_size=4)
    total.backward()
    assert losses.dtype == torch.float32 and hidden.grad.dtype == torch.bfloat16 and torch.isfinite(total)


def test_chunked_loss_under_bf16_autocast_matches_fp32_autograd():
    """bf16 matmuls and logits, fp32 statistics: the loss and both gradients stay within bf16 rounding."""
    torch.manual_seed(0)
    hidden = torch.randn(2, 9, 32, requires_grad=True)
    weight = (torch.randn(300, 32) * 0.3).requires_grad_()
    targets = torch.randint(0, 300, (2, 9))
    targets[1, 6:] = IGNORE_INDEX
    plain, plain_losses = lm_loss(hidden, weight, targets)
    grads_plain = torch.autograd.grad(plain, (hidden, weight))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert matmul_dtype(hidden, weight) == torch.bfloat16
        total, losses = lm_loss(hidden, weight, targets, chunk_size=4)
    grads = torch.autograd.grad(total, (hidden, weight))
    assert total.dtype == losses.dtype == torch.float32
    assert [g.dtype for g in grads] == [torch.float32, torch.float32]  # fp32 master weights get fp32 gradients
    torch.testing.assert_close(total, plain, rtol=1e-2, atol=0.0)
    torch.testing.assert_close(losses, plain_losses, rtol=0.0, atol=0.05)
    assert (losses[1, 6:] == 0).all()
    for got, want in zip(grads, grads_plain):
        assert ((got - want).norm() / want.norm()).item() < 2e-2


def test_chunk_positions_follow_the_byte_budget_and_dtype():
    assert chunk_positions(2**27, 151_936, torch.float32) == 220
    assert chunk_positions(2**27, 151_936, torch.bfloat16) == 441
    assert chunk_positions(10, 151_936, torch.float32) == 1
    assert matmul_dtype(torch.zeros(1), torch.zeros(1)) == torch.float32


@pytest.mark.parametrize("chunk", [None, 3, 64])
def test_z_loss_and_its_gradients_equal_autograd(chunk):
    """Σ_valid (CE + z·log²Z), and the gradients to hidden and weight, against plain autograd; the per-position
    losses stay the cross-entropy alone."""
    torch.manual_seed(3)
    hidden = torch.randn(2, 7, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    targets = torch.randint(0, 50, (2, 7))
    targets[0, :2] = IGNORE_INDEX
    z = 1e-2
    logits = F.linear(hidden, weight)
    valid = targets != IGNORE_INDEX
    ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none")
    expected = ce.sum() + z * torch.logsumexp(logits, -1)[valid].square().sum()
    expected.backward()
    eh, ew = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    total, losses = lm_loss(hidden, weight, targets, chunk_size=chunk, z_loss=z)
    total.backward()
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(losses.flatten(), ce.detach(), atol=1e-5)
    assert torch.allclose(hidden.grad, eh, atol=1e-5) and torch.allclose(weight.grad, ew, atol=1e-5)
    assert (total - ce.sum()).item() > 0  # the z-term is there
