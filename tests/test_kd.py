"""Training the synthesis model (JiuZhang3.0's knowledge distillation) as a stage: the loss on output tokens only,
packed pairs kept apart, `data=jiuzhang_kd` end to end from scratch / a checkpoint / `hf:DIR`, its held-out loss,
resume, and pairs as text in another data config's mixture."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minimath.checkpoint import CheckpointMeta, load_checkpoint
from minimath.data.datamodule import MixtureBatches
from minimath.data.prepare import prepare
from minimath.data.shards import DTYPE, ID_MASK
from minimath.errors import UserError
from minimath.export import export
from minimath.lit_module import MiniMathModule, module_hparams
from minimath.loss import IGNORE_INDEX, lm_loss
from minimath.model import ModelConfig, document_attention
from minimath.tb import read_scalars as scalars
from minimath.tokenizer import CompactTokenizer, get_tokenizer
from minimath.training import run

from conftest import compose_config, small_data_config, write_pairs

QWEN = get_tokenizer("qwen")
OPTIM = {"lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}
SEQ = 32


class StoredWindows:
    """Window i of a stored shard, as `TokenWindows.get` cuts it (for building a batch by hand)."""

    def __init__(self, tokens: np.ndarray):
        self.tokens = tokens

    def get(self, i):
        return self.tokens[i * SEQ : i * SEQ + SEQ + 1], 0


@pytest.fixture
def packed_pairs(tmp_path):
    """Prepared pairs (prompt masked), the stored shard, which stored tokens are output targets (the output and its
    `<|endoftext|>`, worked out from the pairs' own encodings), and a compact vocabulary over them."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    cfg = small_data_config(
        tmp_path / "prepared",
        {"kd": {"_target_": "minimath.data.pairs.PairSource", "paths": [str(tmp_path / "pairs.jsonl")]}},
    )
    manifest = prepare(cfg, log=lambda *_: None)
    stored = np.fromfile(tmp_path / "prepared" / manifest["sources"]["kd"]["shards"][0]["file"], dtype=DTYPE)
    is_output = np.concatenate(
        [
            [False] * len(QWEN.encode_ordinary(p["input"])) + [True] * (len(QWEN.encode_ordinary(p["output"])) + 1)
            for p in pairs
        ]
    )
    return stored, is_output, CompactTokenizer.keeping(QWEN, manifest["sources"]["kd"]["used_ids"])


def tiny_module(vocab_size: int, **kwargs) -> MiniMathModule:
    cfg = ModelConfig(
        vocab_size=vocab_size, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_hidden=64, max_seq_len=SEQ
    )
    torch.manual_seed(0)
    return MiniMathModule(**module_hparams(cfg, OPTIM, {"name": "qwen"}), **kwargs)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # training_step outside a Trainer
@pytest.mark.parametrize("chunk_bytes", [None, 4096])
def test_masked_loss_equals_cross_entropy_over_the_output_tokens_alone(packed_pairs, chunk_bytes):
    stored, is_output, vocab = packed_pairs
    batch = MixtureBatches(None, 0, 4, 0, 1, vocab.from_base, eot_id=vocab.eot_id).batch(StoredWindows(stored), 0)
    module = tiny_module(vocab.vocab_size, loss_chunk_bytes=chunk_bytes)
    loss = module.training_step(batch, 0)["loss"]

    windows = np.stack([stored[i * SEQ + 1 : i * SEQ + SEQ + 1] for i in range(4)])
    output_target = torch.from_numpy(np.stack([is_output[i * SEQ + 1 : i * SEQ + SEQ + 1] for i in range(4)]))
    targets = torch.from_numpy(vocab.from_base[windows & ID_MASK])
    positions, mask = document_attention(batch["documents"])
    logits = module.model(batch["input_ids"], positions=positions, mask=mask)
    by_hand = F.cross_entropy(logits[output_target].float(), targets[output_target])
    assert 0 < int(output_target.sum()) < output_target.numel()
    assert float(loss.detach()) == pytest.approx(float(by_hand.detach()), rel=1e-5)


def test_masked_positions_contribute_zero_gradient(packed_pairs):
    stored, _, vocab = packed_pairs
    batch = MixtureBatches(None, 0, 4, 0, 1, vocab.from_base, eot_id=vocab.eot_id).batch(StoredWindows(stored), 0)
    model = tiny_module(vocab.vocab_size).model
    positions, mask = document_attention(batch["documents"])
    hidden = model.hidden_states(batch["input_ids"], positions=positions, mask=mask)
    hidden.retain_grad()
    total, _ = lm_loss(hidden, model.output_weight, batch["targets"], chunk_size=7)
    total.backward()
    ignored = batch["targets"] == IGNORE_INDEX
    assert ignored.any() and (hidden.grad[ignored] == 0).all()
    assert (hidden.grad[~ignored].abs().sum(dim=-1) > 0).all()


def test_a_pair_never_attends_to_the_previous_pair_in_a_packed_window(tiny_model_config):
    model = tiny_module(tiny_model_config.vocab_size).model.eval()
    eot, previous, this = 0, [11, 12, 13, 14, 15], [21, 22, 23, 24, 25, 26]
    window = torch.tensor([[eot, *previous, eot, *this], [eot, 31, 32, 33, 34, 35, eot, *this]])
    with torch.no_grad():
        positions, mask = document_attention((window == eot).cumsum(dim=1))
        logits = model(window, positions=positions, mask=mask)
        alone = model(torch.tensor([[eot, *this]]))
        unmasked = model(window)
    assert torch.equal(logits[0, 6:], logits[1, 6:])  # the previous pair's tokens changed, this pair's logits did not
    torch.testing.assert_close(logits[0, 6:], alone[0], rtol=0, atol=1e-5)  # as if it were alone
    assert not torch.allclose(unmasked[0, 6:], unmasked[1, 6:])  # plain causal attention would see them


def kd_overrides(tmp_path, pairs, *extra):
    return [
        "data=jiuzhang_kd",
        f"data.pairs={pairs}",
        f"paths.data_root={tmp_path / 'prepared'}",
        "data.workers=1",
        "stage=1",
        "model.n_layer=2",
        "model.n_embd=32",
        "model.n_head=2",
        "model.n_kv_head=2",
        "model.ffn_hidden=64",
        f"model.max_seq_len={SEQ}",
        "hardware.micro_batch=4",
        "batch=128",
        "train.max_tokens=1280",
        "data.sources.kd_pairs.heldout_fraction=0.1",
        "callbacks.heldout_loss.every_n_steps=4",
        "callbacks.heldout_loss.documents=8",
        *extra,
    ]


@pytest.mark.slow
def test_a_kd_stage_trains_from_scratch_a_checkpoint_and_hf_and_logs_the_heldout_loss(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl", 120)
    scratch = tmp_path / "scratch"
    run(compose_config(kd_overrides(tmp_path, tmp_path / "pairs.jsonl"), scratch))
    heldout = scalars(scratch / "tb", "eval/kd_heldout_loss")
    assert list(heldout) == [512, 1024, 1280]  # every 4 steps of 128 tokens, and at the end
    assert list(heldout.values())[-1] < list(heldout.values())[0]
    assert len(scalars(scratch / "tb", "train/loss")) == 10
    final = scratch / "checkpoints" / "final.ckpt"
    assert load_checkpoint(final)["MixtureDataModule"]["stage"] == "1"

    from_ckpt = tmp_path / "from_ckpt"
    run(
        compose_config(
            kd_overrides(tmp_path, tmp_path / "pairs.jsonl", f"init_from={final}", "train.max_tokens=128"), from_ckpt
        )
    )
    assert list(scalars(from_ckpt / "tb", "eval/kd_heldout_loss")) == [1408]  # tokens seen carried over
    assert scalars(from_ckpt / "tb", "eval/kd_heldout_loss")[1408] < list(heldout.values())[0]

    hf_dir = export(final, tmp_path / "hf")
    rows = json.loads((hf_dir / "config.json").read_text())["vocab_size"]  # the compact vocabulary's rows + extra
    from_hf = tmp_path / "from_hf"
    run(
        compose_config(
            kd_overrides(
                tmp_path,
                tmp_path / "pairs.jsonl",
                f"init_from=hf:{hf_dir}",
                f"model.vocab_size={rows}",
                "train.max_tokens=128",
            ),
            from_hf,
        )
    )
    key = "model.layers.0.attention.wq.weight"  # one AdamW step away from the exported weights, not a fresh init
    moved = (
        load_checkpoint(from_hf / "checkpoints" / "final.ckpt")["state_dict"][key]
        - load_checkpoint(final)["state_dict"][key]
    )
    assert float(moved.abs().max()) < 0.01 and scalars(from_hf / "tb", "eval/kd_heldout_loss")


@pytest.mark.slow
def test_a_resumed_kd_stage_logs_the_same_losses(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl", 120)
    extra = ["checkpoint.every_n_train_steps=5", "checkpoint.keep_last=null"]
    ref = tmp_path / "ref"
    run(compose_config(kd_overrides(tmp_path, tmp_path / "pairs.jsonl", *extra), ref))
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(ref / "checkpoints" / "step0000005.ckpt", resumed / "checkpoints" / "last.ckpt")
    shutil.copy(ref / "fingerprint.json", resumed / "fingerprint.json")  # the same settings: a resume
    run(compose_config(kd_overrides(tmp_path, tmp_path / "pairs.jsonl", *extra), resumed))
    cut = CheckpointMeta.of(load_checkpoint(ref / "checkpoints" / "step0000005.ckpt")).tokens_seen
    for tag in ("train/loss", "eval/kd_heldout_loss"):
        expected = {t: v for t, v in scalars(ref / "tb", tag).items() if t > cut}
        assert expected and scalars(resumed / "tb", tag) == expected, tag


@pytest.mark.slow
def test_pairs_join_another_data_configs_stage_as_text(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl", 120)
    source = f"{{_target_: minimath.data.pairs.PairSource, paths: [{tmp_path / 'pairs.jsonl'}], loss_on: all}}"
    cfg = compose_config(
        [
            "data=embedded",
            "stage=1",
            f"paths.data_root={tmp_path / 'prepared'}",
            "data.workers=1",
            f"+data.sources.kd_text={source}",
            "data.stages.1.mix=[{source: general_en, share: 0.5}, {source: kd_text, share: 0.5}]",
            *[
                f"data.sources.{n}.documents_count=60"
                for n in ("general_en", "general_zh", "math_text", "word_problems_cot", "basic_math", "equations")
            ],
            "model.n_layer=2",
            "model.n_embd=32",
            "model.n_head=2",
            "model.n_kv_head=2",
            "model.ffn_hidden=64",
            f"model.max_seq_len={SEQ}",
            "hardware.micro_batch=4",
            "batch=128",
            "train.max_tokens=256",
            "callbacks.heldout_eval.n=1",
            "callbacks.heldout_eval.max_new_tokens=1",
        ],
        tmp_path / "run",
    )
    run(cfg)
    assert set(scalars(tmp_path / "run" / "tb", "train_source/kd_text")) <= {128, 256}
    assert scalars(tmp_path / "run" / "tb", "train_source/kd_text")


@pytest.mark.slow
def test_a_stage_initialised_from_a_checkpoint_of_other_data_keeps_its_vocabulary(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl", 120)
    first = tmp_path / "first"
    run(compose_config(kd_overrides(tmp_path, tmp_path / "pairs.jsonl", "train.max_tokens=128"), first))
    final = load_checkpoint(first / "checkpoints" / "final.ckpt")
    other = tmp_path / "other.jsonl"  # new words: ids the first run's compact vocabulary does not hold
    other.write_text(
        "".join(
            json.dumps(
                {
                    "input": f"## Question\nHow many apples are {a} crates of twelve?\n## Solution\n",
                    "output": f"12 × {a} = {12 * a}. The answer is {12 * a}.",
                }
            )
            + "\n"
            for a in range(2, 60)
        )
    )
    second = tmp_path / "second"
    run(
        compose_config(
            kd_overrides(tmp_path, other, f"init_from={first / 'checkpoints' / 'final.ckpt'}", "train.max_tokens=128"),
            second,
        )
    )
    trained = load_checkpoint(second / "checkpoints" / "final.ckpt")
    assert trained["hyper_parameters"]["tokenizer"] == final["hyper_parameters"]["tokenizer"]
    assert "apples" not in get_tokenizer("qwen").decode(final["hyper_parameters"]["tokenizer"]["kept_ids"])


@pytest.mark.slow
def test_init_vocab_extend_appends_the_new_ids_and_keeps_what_the_inherited_rows_compute(tmp_path):
    from minimath.checkpoint import model_state
    from minimath.model import Transformer
    from minimath.start import StageStart, StartKind
    from minimath.tokenizer import tokenizer_from_state
    from minimath.training import build_model_config, extend_start_vocabulary

    write_pairs(tmp_path / "pairs.jsonl", 120)
    first = tmp_path / "first"
    run(compose_config(kd_overrides(tmp_path, tmp_path / "pairs.jsonl", "train.max_tokens=128"), first))
    ckpt = first / "checkpoints" / "final.ckpt"
    other = tmp_path / "other.jsonl"  # "apples" and "crates": ids the first run's compact vocabulary does not hold
    other.write_text(
        "".join(
            json.dumps({"input": f"## Question\nHow many apples are {a} crates?\n## Solution\n", "output": f"{a}"})
            + "\n"
            for a in range(2, 60)
        )
    )
    for bad, message in (
        (["init_vocab=grow"], "init_vocab=grow is not a choice"),
        (["init_vocab=extend", "init_optimizer=true"], "set init_optimizer=false"),
    ):
        with pytest.raises(UserError, match=message):
            run(compose_config(kd_overrides(tmp_path, other, f"init_from={ckpt}", *bad), tmp_path / bad[-1]))
    second = tmp_path / "second"
    run(
        compose_config(
            kd_overrides(tmp_path, other, f"init_from={ckpt}", "init_vocab=extend", "train.max_tokens=128"), second
        )
    )
    old_tok = tokenizer_from_state(load_checkpoint(ckpt)["hyper_parameters"]["tokenizer"])
    new_tok = tokenizer_from_state(
        load_checkpoint(second / "checkpoints" / "final.ckpt")["hyper_parameters"]["tokenizer"]
    )
    assert new_tok.extends(old_tok)  # every inherited id keeps its compact id
    assert new_tok.unk_id not in new_tok.encode(" apples crates") and old_tok.unk_id in old_tok.encode(" apples")

    # Before any step, the extended model computes the inherited ids' logits exactly as the checkpoint did.
    checkpoint = load_checkpoint(ckpt)
    old_model = Transformer(ModelConfig(**checkpoint["hyper_parameters"]["model"]))
    old_model.load_state_dict(model_state(checkpoint))
    cfg = compose_config(kd_overrides(tmp_path, other, f"init_from={ckpt}", "init_vocab=extend"), tmp_path / "x")
    model_config = build_model_config(cfg.model, new_tok)
    start = StageStart(StartKind.INIT, ckpt, checkpoint)
    extend_start_vocabulary(start, new_tok, model_config)
    new_model = Transformer(model_config)
    new_model.load_state_dict(model_state(checkpoint))
    ids = torch.tensor([[i for i in old_tok.encode("12 × 7 = 84. The answer is 84.") if i != old_tok.unk_id]])
    with torch.no_grad():
        old_logits, new_logits = old_model(ids), new_model(ids)
    n = len(old_tok.kept_ids)
    torch.testing.assert_close(new_logits[..., :n], old_logits[..., :n])
    torch.testing.assert_close(new_logits[..., new_tok.unk_id], old_logits[..., old_tok.unk_id])
    rows = new_model.tok_embeddings.weight.detach()
    torch.testing.assert_close(rows[n], rows[:n].mean(0))  # a new id starts at the mean embedding
