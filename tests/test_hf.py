"""Hugging Face interop (minimath.hf, minimath.export): logits and greedy-generation parity with the exported
transformers model, tokenizer parity on a generated and hand-picked corpus, the round trip through init_from=hf:,
and one-line errors for what our architecture cannot load."""

import json
import random
import shutil

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from minimath.checkpoint import ARCHITECTURE_FIELDS, AtomicCheckpointIO, load_checkpoint, model_state
from minimath.config import CONF_DIR
from minimath.errors import UserError
from minimath.eval.generation import GenerationConfig, generate, load_for_inference
from minimath.export import export
from minimath.hf import from_hf, hf_checkpoint, hf_tokenizer_json, permute_rotary
from minimath.lit_module import module_hparams
from minimath.model import ModelConfig, Transformer
from minimath.tokenizer import CompactTokenizer, get_tokenizer
from minimath.training import run

from conftest import TINY_TRAIN_OVERRIDES, compose_config

transformers = pytest.importorskip("transformers")  # pinned in requirements.txt; the skip guards partial installs

EDGE_CASES = [
    "",
    " ",
    "  leading and trailing  ",
    "\n\n\n",
    "\t\ttabs\tand\r\nCRLF\r\n",
    "a\u00a0no-break space",
    "12345678901234567890",
    "3.14159 and -0.5e-10",
    "1,234,567.89",
    "x^2 + y^2 = z^2",
    "2^{10} = 1024",
    "\\frac{3}{4} + \\sqrt{16} = \\boxed{4.75}",
    "$\\int_0^1 x\\,dx = \\frac{1}{2}$",
    "\\begin{aligned} a &= b \\end{aligned}",
    "计算：37 + 45 = 82。答：82",
    "小明有5个苹果，吃了2个，还剩几个？答案：3",
    "鸡兔同笼，共35个头，94只脚。",
    "混合 mixed 中英 text 123",
    "「引号」『书名』（括号）",
    "ＡＢＣ１２３ fullwidth",
    "日本語のテキスト",
    "한국어 텍스트",
    "émigré café naïve",
    "e\u0301 combining accent (NFC)",
    "Å vs A\u030a",
    "emoji 🧮➗✖️",
    "\ufffd replacement",
    "<|endoftext|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "<|extra_0|><|extra_204|>",
    "text<|endoftext|>more text",
    "I'm sure they'll've it's",
    "DON'T SHOUT'S",
    "#### 42",
    "The answer is $\\boxed{\\dfrac{7}{3}}$.",
    "a=b;c=d\n\td=e",
    "    indented code():\n        return 1",
    "URL https://example.com/a?b=c&d=e",
    "tab\there",
    "trailing newline\n",
    "((2)/(3))",
    "5((7)/(10))",
    "35%",
]


def synth_corpus(n_per_source: int = 180) -> list[str]:
    """Documents of every embedded training source (English, Chinese, math text, CoT word problems, arithmetic,
    equations): 1,080 texts, drawn reproducibly."""
    data = OmegaConf.load(CONF_DIR / "data" / "embedded.yaml")
    texts = []
    for name, source in data.sources.items():
        generator = hydra.utils.instantiate(source.generator)
        rng = random.Random(f"hf-corpus-{name}")
        texts += [generator.document(rng) for _ in range(n_per_source)]
    return texts


@pytest.fixture(scope="module")
def corpus():
    return synth_corpus()


@pytest.fixture(scope="module")
def qwen():
    return get_tokenizer("qwen")


def hf_from_spec(spec):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(spec))


@pytest.mark.slow
def test_full_qwen_tokenizer_matches_ours_on_every_text(qwen, corpus):
    spec, extra = hf_tokenizer_json(qwen, 151_936)
    hf = hf_from_spec(spec)
    assert extra == 0
    texts = corpus + EDGE_CASES
    assert len(texts) >= 1_000
    for text in texts:
        ours = qwen.encode(text)
        theirs = hf.encode(text, add_special_tokens=False).ids
        assert theirs == ours, text
        assert hf.decode(theirs, skip_special_tokens=False) == qwen.decode(ours), text
    # digits one per token, the 208 special tokens at their ids
    assert hf.encode("2024", add_special_tokens=False).ids == [qwen.encode(d)[0] for d in "2024"]
    assert [hf.token_to_id(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|extra_204|>")] == [
        151_643,
        151_644,
        151_645,
        151_850,
    ]


@pytest.mark.slow
def test_compact_tokenizer_keeps_our_ids(qwen, corpus):
    compact = CompactTokenizer.from_corpus(qwen, corpus[::2])
    rows = compact.vocab_size + 13  # padding rows, as a model pads its embedding
    spec, extra = hf_tokenizer_json(compact, rows)
    hf = hf_from_spec(spec)
    assert extra > 0 and max(spec["model"]["vocab"].values()) == rows + extra - 1
    unknown_free = 0
    for text in corpus + EDGE_CASES:
        ours = compact.encode(text)
        theirs = hf.encode(text, add_special_tokens=False).ids
        if compact.unknown_count(ours) == 0:  # text the compact vocabulary can write: the same ids
            unknown_free += 1
            assert theirs == ours, text
            assert hf.decode(theirs, skip_special_tokens=False) == compact.decode(ours), text
        else:  # ours writes unknown ids; the export writes the pieces BPE stops at (kept ids, or ids past the
            # rows that the model reads as unknown), so it still decodes the text
            assert theirs != ours, text
            assert hf.decode(theirs, skip_special_tokens=False) == qwen.decode(qwen.encode(text)), text
    assert unknown_free >= 1_000  # the held-out half of the corpus is covered too
    assert hf.decode([compact.unk_id]) == "\ufffd" == compact.decode([compact.unk_id])


def test_rotary_permutation_round_trips_and_preserves_scores():
    w = torch.randn(4 * 8, 5)
    assert torch.equal(permute_rotary(permute_rotary(w, 4, to_hf=True), 4, to_hf=False), w)
    assert not torch.equal(permute_rotary(w, 4, to_hf=True), w)
    gains = torch.randn(8)  # a QK-norm weight: one head's dimensions
    assert torch.equal(permute_rotary(permute_rotary(gains, 1, to_hf=True), 1, to_hf=False), gains)


def random_checkpoint(tmp_path, tokenizer, name="m", **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=tokenizer.vocab_size + 7,
        n_layer=2,
        n_head=4,
        n_kv_head=2,
        n_embd=64,
        ffn_hidden=96,
        max_seq_len=48,
        **kw,
    )
    model = Transformer(cfg)
    with torch.no_grad():  # gains away from 1, so a misplaced norm weight shows
        for key, p in model.named_parameters():
            if "norm" in key:
                p.add_(torch.randn_like(p) * 0.3)
    ckpt = {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": module_hparams(cfg, {"lr": 1e-3}, tokenizer.state_dict()),
    }
    path = tmp_path / f"{name}.ckpt"
    AtomicCheckpointIO().save_checkpoint(ckpt, path)
    return path


def assert_parity(ckpt, out, n_tokens=48):
    """Our logits vs the exported model's, fp32 random token batches; greedy generation token for token."""
    model, tokenizer = load_for_inference(ckpt)
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    rows = model.config.vocab_size
    x = torch.randint(0, tokenizer.vocab_size, (3, n_tokens), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model(x), hf(x).logits
    assert (ours - theirs[..., :rows]).abs().max().item() <= 1e-4
    if theirs.shape[-1] > rows:  # a compact vocabulary's extra ids read as the unknown id
        unk = tokenizer.unk_id
        assert torch.equal(theirs[..., rows:], theirs[..., unk : unk + 1].expand_as(theirs[..., rows:]))
    prompt = tokenizer.encode("<|endoftext|>Calculate:\n37 + 45 =")
    assert getattr(tokenizer, "unknown_count", len)(prompt) == 0 or not isinstance(tokenizer, CompactTokenizer)
    assert hf_tok("<|endoftext|>Calculate:\n37 + 45 =")["input_ids"] == prompt
    ours_out = generate(model, tokenizer, [prompt], GenerationConfig(max_new_tokens=12, stop_at_eot=False))[0]
    ids = hf.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, min_new_tokens=12)[0, len(prompt) :]
    assert tokenizer.decode(ids.tolist()) == ours_out
    return hf, hf_tok


@pytest.mark.parametrize(
    "kind,arch,kw",
    [
        ("gqa", "LlamaForCausalLM", {}),
        ("mup", "LlamaForCausalLM", {"mup": True, "mup_base_width": 16}),
        ("qk_norm", "Qwen3ForCausalLM", {"qk_norm": True}),
    ],
)
@pytest.mark.slow
def test_random_init_export_has_logits_parity(tmp_path, qwen, corpus, kind, arch, kw):
    tokenizer = CompactTokenizer.from_corpus(qwen, corpus[::10])  # every source
    ckpt = random_checkpoint(tmp_path, tokenizer, **kw)
    out = export(ckpt, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [arch] and config["tie_word_embeddings"] == (kind != "mup")
    assert config["num_key_value_heads"] == 2 and config["rms_norm_eps"] == 1e-5
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == tokenizer.eot_id
    assert_parity(ckpt, out)


@pytest.mark.slow
def test_full_vocabulary_export_loads_with_the_qwen_ids(tmp_path, qwen):
    ckpt = random_checkpoint(tmp_path, qwen)
    out = export(ckpt, tmp_path / "hf", dtype="bf16")
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.bfloat16
        assert f.get_tensor("model.embed_tokens.weight").shape[0] == qwen.vocab_size + 7
    tok = transformers.AutoTokenizer.from_pretrained(out)
    text = "<|im_start|>user\n小明有5个苹果 and 12 pears<|im_end|>\n"
    assert tok(text)["input_ids"] == qwen.encode(text)
    assert tok.eos_token == "<|endoftext|>"
    with pytest.raises(UserError, match="already exists"):
        export(ckpt, out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    """A trained tiny checkpoint of the embedded data (compact vocabulary), through the training entry point."""
    out = tmp_path_factory.mktemp("trained")
    run(
        compose_config(
            TINY_TRAIN_OVERRIDES
            + [f"paths.data_root={data_root}", "train.max_tokens=1280", "model.n_kv_head=1", "optim.lr=1e-2"],
            out,
        )
    )
    return out / "checkpoints" / "final.ckpt"


@pytest.mark.slow
def test_trained_checkpoint_export_parity_chat_template_and_round_trip(tmp_path, trained):
    out = export(trained, tmp_path / "hf")
    hf, tok = assert_parity(trained, out, n_tokens=32)
    from minimath.eval.prompts import chat

    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "3x + 5 = 11"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == chat("3x + 5 = 11")
    # round trip: the exported directory read back is the checkpoint's own state dict, exactly
    cfg, state = from_hf(out)
    ours = model_state(load_checkpoint(trained))
    rows = ours["tok_embeddings.weight"].shape[0]
    state["tok_embeddings.weight"] = state["tok_embeddings.weight"][:rows]  # the compact vocabulary's extra rows
    assert ours and set(state) == set(ours) and all(torch.equal(state[k], ours[k]) for k in ours)
    original = load_checkpoint(trained)["hyper_parameters"]["model"]
    assert all(getattr(cfg, k) == original[k] for k in ARCHITECTURE_FIELDS if k != "vocab_size")
    assert cfg.vocab_size == rows + json.loads((out / "config.json").read_text())["minimath"]["extra_rows"]


@pytest.mark.slow
def test_init_from_hf_starts_a_stage_from_the_exported_weights(tmp_path, qwen, data_root):
    ckpt = random_checkpoint(tmp_path, qwen, name="full")
    out = export(ckpt, tmp_path / "hf")
    state = hf_checkpoint(out)["state_dict"]
    original = load_checkpoint(ckpt)["state_dict"]
    assert original and set(state) == set(original) and all(torch.equal(state[k], original[k]) for k in original)
    tiny = [o for o in TINY_TRAIN_OVERRIDES if not o.startswith("model.")] + [
        f"paths.data_root={data_root}",
        "model.compact_vocab=false",
        "model.n_layer=2",
        "model.n_embd=64",
        "model.n_head=4",
        "model.n_kv_head=2",
        "model.ffn_hidden=96",
        "model.max_seq_len=32",
        f"model.vocab_size={qwen.vocab_size + 7}",
        "train.max_tokens=128",
    ]
    run(compose_config(tiny + [f"init_from=hf:{out}"], tmp_path / "stage"))
    assert load_checkpoint(tmp_path / "stage" / "checkpoints" / "final.ckpt")["global_step"] == 1
    wider = [o if o != "model.ffn_hidden=96" else "model.ffn_hidden=128" for o in tiny]
    with pytest.raises(UserError, match="different architecture .ffn_hidden is 96 there, 128 here"):
        run(compose_config(wider + [f"init_from=hf:{out}"], tmp_path / "wider"))


def test_what_our_architecture_cannot_load_is_a_one_line_error(tmp_path, qwen):
    out = export(random_checkpoint(tmp_path, CompactTokenizer.from_corpus(qwen, ["a b c 1 2 3"])), tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    for change, message in [
        ({"model_type": "gpt2"}, "not Llama-shaped"),
        ({"tie_word_embeddings": False}, "untied"),
        ({"attention_bias": True}, "biases"),
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}, "rope scaling"),
    ]:
        bad = tmp_path / f"bad-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(out, bad)
        (bad / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(UserError, match=message):
            from_hf(bad)
    with pytest.raises(UserError, match="no config.json"):
        from_hf(tmp_path)
    empty = tmp_path / "noweights"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="no .safetensors"):
        from_hf(empty)


@pytest.mark.slow
def test_lm_eval_reads_the_export_offline_and_generates_our_text(tmp_path, trained, monkeypatch):
    """lm-evaluation-harness (--model hf) on the exported directory with a local task file: the same prompts give
    the same greedy continuations as our decoder."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = export(trained, tmp_path / "hf")
    model, tokenizer = load_for_inference(trained)
    items = [{"question": f"{a} + {b} =", "answer": str(a + b)} for a, b in ((3, 4), (12, 30), (7, 58), (41, 9))]
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(i) + "\n" for i in items))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "tiny_sums.yaml").write_text(
        "task: tiny_sums\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {data}\ntest_split: test\noutput_type: generate_until\n"
        'doc_to_text: "<|endoftext|>Calculate:\\n{{question}}"\ndoc_to_target: "{{answer}}"\n'
        'generation_kwargs:\n  until: ["\\n"]\n  do_sample: false\n  max_gen_toks: 8\n'
        "metric_list:\n  - metric: exact_match\nmetadata:\n  version: 1.0\n"
    )
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={out},dtype=float32,max_length=32",
        tasks=["tiny_sums"],
        task_manager=TaskManager(include_path=str(tasks)),
        batch_size=1,
        device="cpu",
        log_samples=True,
    )
    samples = sorted(results["samples"]["tiny_sums"], key=lambda s: s["doc_id"])
    # every item was answered, once, in order: a short or empty list cannot pass the comparison below vacuously
    assert items and [s["doc_id"] for s in samples] == list(range(len(items)))
    assert all(s["resps"][0][0] for s in samples)  # text to compare (8 tokens each, measured), not empty strings
    settings = GenerationConfig(max_new_tokens=8, stop=("\n",))
    for item, sample in zip(items, samples, strict=True):
        prompt = tokenizer.encode(f"<|endoftext|>Calculate:\n{item['question']}")
        assert sample["arguments"][0][0] == tokenizer.decode(prompt)
        assert sample["resps"][0][0] == generate(model, tokenizer, [prompt], settings)[0]
