import pytest
import torch
import torch.nn.functional as F

from minimath.eval.generation import GenerationConfig, generate, generate_without_cache, loglikelihoods
from minimath.model import ModelConfig, Transformer


class IdTokenizer:
    vocab_size, eot_id, name = 50, 0, "ids"

    def decode(self, ids):
        return " ".join(map(str, ids))


def lively_model(seed=0, max_seq_len=64, n_kv_head=2):
    """Random weights large enough that attention matters (a default-init model just repeats its input)."""
    torch.manual_seed(seed)
    model = Transformer(
        ModelConfig(
            vocab_size=64, n_layer=2, n_head=4, n_kv_head=n_kv_head, n_embd=32, ffn_hidden=64, max_seq_len=max_seq_len
        )
    ).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    return model


PROMPTS = [[5, 6, 7, 8, 9], [11, 12], [40, 41, 42, 43, 44, 45, 46, 47], [3]]


@pytest.mark.parametrize("seed,n_kv_head", [(0, 2), (1, 4), (2, 1)])
def test_kv_cache_equals_re_forward_token_for_token(seed, n_kv_head):
    model, tok = lively_model(seed, n_kv_head=n_kv_head), IdTokenizer()
    cfg = GenerationConfig(max_new_tokens=20, stop_at_eot=False)
    batched = generate(model, tok, PROMPTS, cfg)
    assert batched == [generate_without_cache(model, tok, p, cfg) for p in PROMPTS]
    assert batched == [generate(model, tok, [p], cfg)[0] for p in PROMPTS]  # left padding changes nothing
    assert len(set(batched[0].split())) > 3


def test_stop_strings_and_eot():
    model, tok = lively_model(), IdTokenizer()
    full = generate(model, tok, [PROMPTS[0]], GenerationConfig(max_new_tokens=20, stop_at_eot=False))[0]
    stop = " ".join(full.split()[3:5])
    cut = generate(model, tok, [PROMPTS[0]], GenerationConfig(max_new_tokens=20, stop=(stop,), stop_at_eot=False))[0]
    assert cut == full[: full.index(stop)]
    assert (
        generate_without_cache(
            model, tok, PROMPTS[0], GenerationConfig(max_new_tokens=20, stop=(stop,), stop_at_eot=False)
        )
        == cut
    )
    tok.eot_id = int(full.split()[2])
    assert generate(model, tok, [PROMPTS[0]], GenerationConfig(max_new_tokens=20)) == [" ".join(full.split()[:2])]


def test_long_prompts_are_left_truncated_to_fit():
    model, tok = lively_model(max_seq_len=16), IdTokenizer()
    long_prompt = list(range(1, 40))
    cfg = GenerationConfig(max_new_tokens=100, stop_at_eot=False)  # capped at half the context
    out = generate(model, tok, [long_prompt], cfg)[0]
    assert len(out.split()) == 8
    assert out == generate(model, tok, [long_prompt[-8:]], cfg)[0]


def test_sampling_is_seeded():
    model, tok = lively_model(), IdTokenizer()
    cfg = GenerationConfig(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=3, stop_at_eot=False)
    assert generate(model, tok, PROMPTS, cfg) == generate(model, tok, PROMPTS, cfg)


def test_loglikelihood_equals_hand_computation():
    model = lively_model()
    context, continuation = [5, 6, 7], [8, 9]
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([[5, 6, 7, 8]]))[0], -1)
    expected = float(logp[2, 8] + logp[3, 9])
    assert loglikelihoods(model, [context], [continuation])[0] == pytest.approx(expected, abs=1e-5)
