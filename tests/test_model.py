import math

import pytest
import torch
import torch.nn.functional as F

from minimath.model import ModelConfig, Transformer, apply_rope, count_params, rope_tables


def test_shapes_and_tied_output(tiny_model_config):
    model = Transformer(tiny_model_config)
    idx = torch.randint(0, tiny_model_config.vocab_size, (3, 17))
    assert model(idx).shape == (3, 17, tiny_model_config.vocab_size)
    assert model.output_weight is model.tok_embeddings.weight
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())


def test_param_count_matches_closed_form(tiny_model_config):
    model = Transformer(tiny_model_config)
    counts = count_params(tiny_model_config)
    assert sum(p.numel() for p in model.parameters()) == counts["total"]
    assert counts["embedding"] == tiny_model_config.vocab_size * tiny_model_config.n_embd


def test_causal_no_future_leak(tiny_model_config):
    model = Transformer(tiny_model_config).eval()
    idx = torch.randint(0, tiny_model_config.vocab_size, (1, 20))
    changed = idx.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % tiny_model_config.vocab_size
    with torch.no_grad():
        assert torch.allclose(model(idx)[0, :12], model(changed)[0, :12], atol=1e-6)


def test_gqa_equals_repeated_kv_heads(tiny_model_config):
    """Grouped-query attention must equal multi-head attention with each KV head repeated."""
    model = Transformer(tiny_model_config).eval()
    attn = model.layers[0].attention
    x = torch.randn(2, 9, tiny_model_config.n_embd)
    cos, sin = model.rope_cos[:9], model.rope_sin[:9]
    b, t, _ = x.shape
    q = apply_rope(attn.wq(x).view(b, t, attn.n_head, -1).transpose(1, 2), cos, sin)
    k = apply_rope(attn.wk(x).view(b, t, attn.n_kv_head, -1).transpose(1, 2), cos, sin)
    v = attn.wv(x).view(b, t, attn.n_kv_head, -1).transpose(1, 2)
    rep = attn.n_head // attn.n_kv_head
    y = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=True)
    expected = attn.wo(y.transpose(1, 2).reshape(b, t, -1))
    with torch.no_grad():
        assert torch.allclose(attn(x, cos, sin), expected, atol=1e-6)


def test_rope_rotates_pairs_and_preserves_norm():
    cos, sin = rope_tables(head_dim=8, seq_len=5, theta=10_000.0)
    x = torch.randn(1, 1, 5, 8)
    y = apply_rope(x, cos, sin)
    assert torch.allclose(y[..., 0, :], x[..., 0, :])  # position 0 is not rotated
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    # first pair at position 1 rotates by angle 1 (frequency θ^0)
    x0, x1 = x[0, 0, 1, 0], x[0, 0, 1, 1]
    assert torch.allclose(y[0, 0, 1, 0], x0 * math.cos(1) - x1 * math.sin(1), atol=1e-6)


def test_rope_relative_positions():
    """q·k after RoPE depends only on the distance between positions."""
    cos, sin = rope_tables(head_dim=16, seq_len=32, theta=10_000.0)
    q, k = torch.randn(16), torch.randn(16)

    def score(i, j):
        qi = apply_rope(q.view(1, 1, 1, -1).expand(1, 1, 32, 16), cos, sin)[0, 0, i]
        kj = apply_rope(k.view(1, 1, 1, -1).expand(1, 1, 32, 16), cos, sin)[0, 0, j]
        return qi @ kj

    assert torch.allclose(score(5, 2), score(20, 17), atol=1e-4)


@pytest.mark.parametrize(
    "style,scaled",
    [("gpt2", ("attention.wo", "feed_forward.w2")), ("minimath_code", ("attention.wo", "feed_forward.w3"))],
)
def test_init_standard_deviations(style, scaled):
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=2048,
        n_layer=8,
        n_head=4,
        n_kv_head=4,
        n_embd=256,
        ffn_hidden=1024,
        max_seq_len=16,
        init_residual=style,
    )
    model = Transformer(cfg)
    small = 0.02 / math.sqrt(2 * cfg.n_layer)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            assert torch.equal(p, torch.ones_like(p))
            continue
        expected = small if name.removesuffix(".weight").endswith(scaled) else 0.02
        assert abs(p.std().item() - expected) < 0.05 * expected, name
        assert abs(p.mean().item()) < 0.1 * expected, name


def test_config_validation():
    with pytest.raises(ValueError, match="divisible by n_head"):
        ModelConfig(vocab_size=8, n_layer=1, n_head=3, n_kv_head=3, n_embd=32, ffn_hidden=8, max_seq_len=8)
    with pytest.raises(ValueError, match="n_kv_head"):
        ModelConfig(vocab_size=8, n_layer=1, n_head=4, n_kv_head=3, n_embd=32, ffn_hidden=8, max_seq_len=8)
    with pytest.raises(ValueError, match="init_residual"):
        ModelConfig(
            vocab_size=8,
            n_layer=1,
            n_head=4,
            n_kv_head=4,
            n_embd=32,
            ffn_hidden=8,
            max_seq_len=8,
            init_residual="xavier",
        )


def test_too_long_sequence_is_an_error(tiny_model_config):
    model = Transformer(tiny_model_config)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, tiny_model_config.max_seq_len + 1, dtype=torch.long))


def test_meta_device_build_allocates_nothing():
    cfg = ModelConfig(
        vocab_size=151_936, n_layer=18, n_head=16, n_kv_head=16, n_embd=2048, ffn_hidden=8192, max_seq_len=2048
    )
    with torch.device("meta"):
        model = Transformer(cfg)
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == count_params(cfg)["total"]


def test_qk_norm_normalises_each_heads_queries_and_keys(tiny_model_config):
    from dataclasses import replace

    cfg = replace(tiny_model_config, qk_norm=True)
    model = Transformer(cfg)
    assert count_params(cfg)["total"] == sum(p.numel() for p in model.parameters())
    attention = model.layers[0].attention
    seen = {}
    attention.q_norm.register_forward_hook(lambda m, i, o: seen.setdefault("q", o))
    attention.k_norm.register_forward_hook(lambda m, i, o: seen.setdefault("k", o))
    x = torch.randint(0, cfg.vocab_size, (2, 9))
    loss = model(x).float().logsumexp(-1).mean()
    loss.backward()
    for name in ("q", "k"):  # unit RMS per head and position (gains start at 1)
        rms = seen[name].float().pow(2).mean(-1).sqrt()
        assert torch.allclose(rms, torch.ones_like(rms), atol=1e-2)  # up to eps (1e-5) against tiny q·q
    assert attention.q_norm.weight.grad is not None and attention.k_norm.weight.grad is not None
    plain = Transformer(tiny_model_config)
    assert not any("q_norm" in n for n, _ in plain.named_parameters())  # off by default: checkpoints unchanged


def mup_config(width: int, mup: bool = True, **kw) -> ModelConfig:
    kw.setdefault("mup_base_width", 32)
    return ModelConfig(
        vocab_size=64,
        n_layer=2,
        n_head=4,
        n_kv_head=4,
        n_embd=width,
        ffn_hidden=4 * width,
        max_seq_len=32,
        mup=mup,
        **kw,
    )


@pytest.mark.parametrize("width", [64, 128])
def test_mup_init_stds_and_group_lrs(width):
    """µP at m = width/32: hidden matrices std 0.02/√m and LR ÷ m; the tied embedding std 0.02 at the base LR."""
    torch.manual_seed(0)
    model = Transformer(mup_config(width))
    m = width / 32
    hidden = dict(model.named_parameters())
    for name in ("layers.0.attention.wq.weight", "layers.1.attention.wo.weight", "layers.0.feed_forward.w2.weight"):
        assert hidden[name].std().item() == pytest.approx(0.02 / math.sqrt(m), rel=0.06)
    assert model.tok_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.06)
    groups = {name: (params, mult, decays) for name, params, mult, decays in model.parameter_groups()}
    assert groups["hidden_matrices"][1] == pytest.approx(1 / m) and groups["hidden_matrices"][2]
    assert groups["embedding"][0] == [model.tok_embeddings.weight] and groups["embedding"][1:] == (1.0, True)
    assert groups["vectors"][1:] == (1.0, False) and all(p.dim() == 1 for p in groups["vectors"][0])
    assert sum(len(g[0]) for g in groups.values()) == len(list(model.parameters()))


def test_mup_multipliers_in_the_forward_pass():
    """Embedding × scale_emb, residual branches × scale_depth/√L, logits ÷ m, against a hand-written forward."""
    torch.manual_seed(0)
    cfg = mup_config(64)
    model = Transformer(cfg).eval()
    idx = torch.randint(0, 64, (2, 9))
    cos, sin = model.rope_cos[:9], model.rope_sin[:9]
    with torch.no_grad():
        x = model.tok_embeddings(idx) * 12.0
        for block in model.layers:
            x = x + 1.4 / math.sqrt(2) * block.attention(block.attention_norm(x), cos, sin)
            x = x + 1.4 / math.sqrt(2) * block.feed_forward(block.ffn_norm(x))
        expected = F.linear(model.norm(x) / 2.0, model.tok_embeddings.weight)
        assert torch.allclose(model(idx), expected, atol=1e-5)


def test_standard_parametrisation_unchanged_by_mup_fields(tiny_model_config):
    """mup=false ignores the µP fields: same init and outputs whatever the base width."""
    torch.manual_seed(0)
    a = Transformer(tiny_model_config)
    torch.manual_seed(0)
    b = Transformer(ModelConfig(**{**tiny_model_config.__dict__, "mup_base_width": 8, "mup_scale_emb": 3.0}))
    idx = torch.randint(0, 96, (1, 7))
    assert torch.equal(a(idx), b(idx))
    assert [g[0] for g in a.parameter_groups()] == ["matrices", "vectors"]


def coordinate_check(width: int, mup: bool, steps: int = 5, lr: float = 1e-2) -> float:
    """RMS of the last block's output after a few AdamW steps at one LR (µP's coordinate check)."""
    from minimath.loss import lm_loss

    torch.manual_seed(0)
    model = Transformer(mup_config(width, mup))
    opt = torch.optim.AdamW(
        [{"params": p, "lr": lr * mult} for _, p, mult, _ in model.parameter_groups()], weight_decay=0.0
    )
    x = torch.randint(0, 64, (8, 33), generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        total, _ = lm_loss(model.hidden_states(x[:, :-1]), model.output_weight, x[:, 1:])
        (total / x[:, 1:].numel()).backward()
        opt.step()
        opt.zero_grad()
    seen = {}
    model.layers[-1].register_forward_hook(lambda mod, i, out: seen.update(rms=out.pow(2).mean().sqrt().item()))
    with torch.no_grad():
        model(x[:, :-1])
    return seen["rms"]


@pytest.mark.slow
def test_mup_coordinate_check():
    """After training steps, activations keep their size across widths under µP and grow with width under the
    standard parametrisation (at 32 → 256 they grew ~90x when this test was written; µP moved < 3%)."""
    widths = (32, 64, 128, 256)
    mup = [coordinate_check(w, True) for w in widths]
    standard = [coordinate_check(w, False) for w in widths]
    assert max(mup) / min(mup) < 1.2
    assert standard[-1] / standard[0] > 10 and all(b > a for a, b in zip(standard, standard[1:]))


def test_mup_config_validation():
    with pytest.raises(ValueError, match="mup_base_width"):
        mup_config(64, mup_base_width=0)


def test_activation_checkpointing_gives_the_same_loss_and_gradients_and_keeps_fewer_activations(tiny_model_config):
    """Recomputing each block in backward changes what autograd keeps (fewer saved tensors), not what is computed."""
    torch.manual_seed(0)
    model = Transformer(tiny_model_config)
    idx = torch.randint(0, tiny_model_config.vocab_size, (2, 16))

    def loss_grads_and_saved(recompute: bool):
        model.zero_grad()
        model.activation_checkpointing = recompute
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            loss = F.cross_entropy(model(idx).flatten(0, 1), idx.flatten())
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()], sum(saved)

    plain_loss, plain_grads, plain_saved = loss_grads_and_saved(False)
    loss, grads, saved = loss_grads_and_saved(True)
    assert loss == plain_loss
    assert all(torch.equal(a, b) for a, b in zip(grads, plain_grads))
    assert saved < plain_saved / 2, (saved, plain_saved)
    with torch.no_grad():  # never in inference: nothing to recompute
        assert torch.equal(model(idx), model(idx))
