"""Gradient features (`minimath.influence`): the projection keeps inner products within the JL bound and does not
depend on how it is chunked, vmapped per-example gradients equal a loop of autograd, the subsets have their
closed-form sizes, Adam preconditioning reads the right moments, and the cache computes each text once."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from minimath.errors import UserError
from minimath.influence import (
    ChunkedProjection,
    FeatureCache,
    FeatureExtractor,
    FeatureSpec,
    GradientSubset,
    _ExampleLoss,
    adam_denominators,
    batch_tensors,
    cached_features,
    cosine_scores,
)
from minimath.model import Transformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (see tests/conftest.py)


@pytest.fixture
def model(tiny_model_config):
    torch.manual_seed(0)
    return Transformer(tiny_model_config).eval()


def token_examples(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """Sequences of 3..20 tokens (so some are padded inside max_len=16 and some truncated)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=int(rng.integers(3, 21))).tolist() for _ in range(n)]


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_projected_inner_products_stay_within_the_jl_bound(kind):
    # JL (Achlioptas 2003, for both ±1/√d and N(0, 1/d) entries): for fixed unit u, v and d = 1024,
    # |⟨Pu, Pv⟩ − ⟨u, v⟩| ≤ ε‖u‖‖v‖ with ε = 6/√d ≈ 0.19 fails with probability < 2·exp(−ε²d/8) ≈ 2e-2 per pair
    # (the variance of the estimate is ≤ 2/d, so 6/√d is > 4 standard deviations); checked for 20 pairs under 5
    # fixed seeds, all deterministic.
    d, n = 1024, 3000
    eps = 6 / math.sqrt(d)
    for seed in range(5):
        rng = torch.Generator().manual_seed(100 + seed)
        u, v = torch.randn(20, n, generator=rng), torch.randn(20, n, generator=rng)
        v[:10] = u[:10] + 0.5 * v[:10]  # correlated pairs too, not only near-orthogonal ones
        proj = ChunkedProjection(d, seed, kind, chunk_size=1000)
        pu, pv = proj.project(iter([u]), 20), proj.project(iter([v]), 20)
        error = ((pu * pv).sum(1) - (u * v).sum(1)).abs()
        assert (error <= eps * u.norm(dim=1) * v.norm(dim=1)).all(), (seed, error.max())


def test_chunked_projection_equals_the_unchunked_matrix_however_the_coordinates_arrive():
    proj = ChunkedProjection(d=16, seed=3, kind="rademacher", chunk_size=64)
    x = torch.randn(5, 200, dtype=torch.float64).float()
    full = torch.cat([proj.matrix(c) for c in range(3)] + [proj.matrix(3, 200 - 192)])  # the (200 × 16) matrix
    assert full.shape == (200, 16) and set(full.unique().tolist()) == {-0.25, 0.25}
    expected = x.double() @ full.double()
    for pieces in ([x], [x[:, :7], x[:, 7:130], x[:, 130:]], [x[:, i : i + 1] for i in range(200)]):
        assert torch.allclose(proj.project(iter(pieces), 5).double(), expected, atol=1e-5)
    # one example alone gets what it gets in a batch
    assert torch.allclose(proj.project(iter([x[2:3]]), 1)[0].double(), expected[2], atol=1e-5)


def test_vmap_per_example_gradients_equal_a_loop_of_autograd(model):
    extractor = FeatureExtractor(model, FeatureSpec(subset="all", d=8, max_len=16))
    examples = token_examples(5, model.config.vocab_size)
    ids, targets = batch_tensors(examples, 16)
    assert (targets == -100).any(dim=1).sum() >= 2  # padding is part of what is checked
    grads = extractor.gradients(ids, targets)
    loss = _ExampleLoss(model)
    params = list(model.parameters())
    for i in range(len(examples)):
        expected = torch.autograd.grad(loss(ids[i : i + 1], targets[i : i + 1]), params)
        for (name, _), g in zip(model.named_parameters(), expected):
            assert torch.allclose(grads[name][i], g, atol=1e-6, rtol=1e-4), (i, name)


def test_padding_does_not_change_an_examples_gradient(model):
    extractor = FeatureExtractor(model, FeatureSpec(subset="last:1", d=32, max_len=16))
    example = token_examples(1, model.config.vocab_size, seed=4)[0][:6]
    short = FeatureExtractor(model, FeatureSpec(subset="last:1", d=32, max_len=5))
    assert torch.allclose(extractor.features([example]), short.features([example]), atol=1e-6)


def test_subset_parameter_counts(model):
    cfg = model.config
    kv = cfg.n_kv_head * cfg.head_dim
    block = 2 * cfg.n_embd * cfg.n_embd + 2 * cfg.n_embd * kv + 3 * cfg.n_embd * cfg.ffn_hidden + 2 * cfg.n_embd
    assert GradientSubset(model, "all", 0).dim == sum(p.numel() for p in model.parameters())
    assert GradientSubset(model, "last:1", 0).dim == block + cfg.n_embd
    assert GradientSubset(model, "last:2", 0).dim == 2 * block + cfg.n_embd
    # lora:R: ∂L/∂B is (out × R) for each of wq, wk, wv, wo, w1, w2, w3
    outs = cfg.n_embd + kv + kv + cfg.n_embd + cfg.ffn_hidden + cfg.n_embd + cfg.ffn_hidden
    lora = GradientSubset(model, "lora:4", 0)
    assert lora.dim == cfg.n_layer * 4 * outs and len(lora.names) == 7 * cfg.n_layer
    for bad in ("last:3", "last:0", "lora:x", "first:1", "all:2"):
        with pytest.raises(UserError):
            GradientSubset(model, bad, 0)


def test_lora_features_are_the_weight_gradient_times_the_adapter(model):
    """∂L/∂B of W + B·A at B = 0, computed by autograd on an explicit adapter, equals the view used."""
    lora = GradientSubset(model, "lora:3", seed=7)
    name = "layers.1.feed_forward.w2.weight"
    ids, targets = batch_tensors(token_examples(1, model.config.vocab_size, seed=2), 16)
    module = model.layers[1].feed_forward.w2
    b = torch.zeros(module.weight.shape[0], 3, requires_grad=True)
    handle = module.register_forward_hook(lambda m, inp, out: out + inp[0] @ (b @ lora.adapters[name]).T)
    try:
        (expected,) = torch.autograd.grad(_ExampleLoss(model)(ids, targets), [b])
    finally:
        handle.remove()
    (weight_grad,) = torch.autograd.grad(_ExampleLoss(model)(ids, targets), [module.weight])
    assert torch.allclose(lora.view(name, weight_grad[None])[0], expected.flatten(), atol=1e-6)


def adam_checkpoint(model: Transformer, steps: int = 3) -> dict:
    """Lightning's layout: optimizer_states[0] is AdamW.state_dict() over the module's parameter groups."""
    groups = [{"params": params, "name": name} for name, params, _, _ in model.parameter_groups()]
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    ids, targets = batch_tensors(token_examples(4, model.config.vocab_size, seed=9), 16)
    for _ in range(steps):
        optimizer.zero_grad()
        _ExampleLoss(model)(ids, targets).backward()
        optimizer.step()
    return {"optimizer_states": [optimizer.state_dict()]}, optimizer


def test_adam_denominators_map_each_parameter_to_its_own_moments(model):
    checkpoint, optimizer = adam_checkpoint(model)
    names = [n for n, _ in model.named_parameters()]
    denominators = adam_denominators(checkpoint, model, names, "test.ckpt")
    for name, param in model.named_parameters():
        state = optimizer.state[param]
        v_hat = state["exp_avg_sq"] / (1 - 0.95 ** float(state["step"]))
        assert torch.equal(denominators[name], v_hat.sqrt() + 1e-8), name
    spec = FeatureSpec(subset="last:1", d=16, precondition="adam", max_len=16)
    plain = FeatureExtractor(model, FeatureSpec(subset="last:1", d=16, max_len=16))
    examples = token_examples(3, model.config.vocab_size)
    assert not torch.allclose(FeatureExtractor(model, spec, checkpoint).features(examples), plain.features(examples))


def test_adam_without_optimizer_state_is_a_one_line_error(model):
    with pytest.raises(UserError, match="no optimizer state") as err:
        FeatureExtractor(model, FeatureSpec(precondition="adam", max_len=16), {"state_dict": {}}, "weights.ckpt")
    assert "\n" not in str(err.value)


def test_features_do_not_depend_on_the_batch_and_scores_are_cosines(model):
    extractor = FeatureExtractor(model, FeatureSpec(subset="all", d=64, max_len=16, chunk_size=1000))
    examples = token_examples(6, model.config.vocab_size)
    together = extractor.features(examples)
    apart = torch.cat([extractor.features(examples[i : i + 2]) for i in range(0, 6, 2)])
    assert torch.allclose(together, apart, atol=1e-5)
    assert torch.allclose(together.norm(dim=1), torch.ones(6))
    mean, best = cosine_scores(together[:4].numpy(), together[4:].numpy())
    sims = together[:4] @ together[4:].T
    assert np.allclose(mean, sims.mean(1).numpy(), atol=1e-6) and np.allclose(best, sims.max(1).values, atol=1e-6)


def test_the_cache_computes_each_text_once_and_survives_a_restart(model, tmp_path):
    extractor = FeatureExtractor(model, FeatureSpec(subset="last:1", d=16, max_len=16))
    examples = token_examples(5, model.config.vocab_size)
    hashes = ["a", "b", "c", "a", "d"]  # a repeated text is computed once
    cache = FeatureCache(tmp_path, "key", {"what": "test"})
    first, computed = cached_features(extractor, cache, hashes[:3], examples[:3], batch_size=2)
    assert computed == 3 and len(list((tmp_path / "key").glob("part-*.npz"))) == 2
    reopened = FeatureCache(tmp_path, "key", {"what": "test"})
    features, computed = cached_features(extractor, reopened, hashes, examples, batch_size=2)
    assert computed == 1  # only "d"
    assert np.array_equal(features[:3], first) and np.array_equal(features[3], features[0])
