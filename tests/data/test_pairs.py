"""Instruction pairs: prepared with the prompt masked by bit 31, batched with IGNORE_INDEX targets there, split
into train and held-out by prompt, and text sources untouched."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from minimath.data.datamodule import MixtureBatches, MixtureDataModule
from minimath.data.mixture import StagePlan
from minimath.data.prepare import prepare
from minimath.data.shards import DTYPE, ID_MASK, NO_LOSS_BIT
from minimath.loss import IGNORE_INDEX
from minimath.tokenizer import get_tokenizer

from conftest import small_data_config, write_pairs

QWEN = get_tokenizer("qwen")


def pair_source(path, **settings):
    return {"_target_": "minimath.data.pairs.PairSource", "paths": [str(path)], **settings}


def prepared(tmp_path, sources, stage_source="kd", document_mask=True):
    cfg = small_data_config(
        tmp_path / "prepared",
        sources,
        stages={
            "1": {
                "tokens": 2000,
                "epochs": 1,
                "document_mask": document_mask,
                "mix": [{"source": stage_source, "share": 1.0}],
            }
        },
    )
    return cfg, prepare(cfg, log=lambda *_: None)


def shard(cfg, manifest, name) -> np.ndarray:
    return np.concatenate(
        [np.fromfile(f"{cfg.dir}/{s['file']}", dtype=DTYPE) for s in manifest["sources"][name]["shards"]]
    )


def test_prompt_tokens_carry_the_no_loss_bit_and_loss_on_all_writes_the_same_ids_without_it(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 30)
    cfg, manifest = prepared(
        tmp_path,
        {"kd": pair_source(tmp_path / "pairs.jsonl"), "text": pair_source(tmp_path / "pairs.jsonl", loss_on="all")},
    )
    masked, plain = shard(cfg, manifest, "kd"), shard(cfg, manifest, "text")
    assert np.array_equal(masked & ID_MASK, plain) and not (plain & NO_LOSS_BIT).any()
    expected = np.concatenate(
        [
            np.concatenate(
                [
                    np.asarray(QWEN.encode_ordinary(p["input"])) | NO_LOSS_BIT,
                    QWEN.encode_ordinary(p["output"]),
                    [QWEN.eot_id],
                ]
            )
            for p in pairs
        ]
    )
    assert np.array_equal(masked, expected.astype(DTYPE))  # the prompt keeps its closing "## Solution\n"
    assert set(manifest["sources"]["kd"]["used_ids"]) == set(np.unique(plain).tolist())


def test_text_source_shards_are_plain_token_ids(tmp_path):
    docs = ["Fractions name parts of a whole.", "A prime has exactly two divisors."]
    (tmp_path / "text.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    cfg, manifest = prepared(
        tmp_path, {"kd": {"_target_": "minimath.data.sources.FileSource", "paths": [str(tmp_path / "text.jsonl")]}}
    )
    expected = [i for d in docs for i in QWEN.encode_ordinary(d) + [QWEN.eot_id]]
    assert shard(cfg, manifest, "kd").tolist() == expected


def test_malformed_pair_records_are_counted_skips_with_the_first_offender(tmp_path):
    good = write_pairs(tmp_path / "good.jsonl", 3)
    lines = [
        json.dumps(good[0]),
        '{"input": "broken',
        json.dumps({"input": "## Question\nonly\n## Solution\n"}),
        json.dumps({"input": 7, "output": "seven"}),
        json.dumps({"input": "q", "output": "  "}),
        "[1, 2]",
        json.dumps({"question": good[1]["input"], "answer": good[1]["output"]}),
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    _, manifest = prepared(tmp_path, {"kd": pair_source(tmp_path / "pairs.jsonl")})
    stats = manifest["sources"]["kd"]["stats"]
    assert stats["kept"] == 1
    assert stats["skipped"] == {
        "malformed JSON": 1,
        "missing field 'output'": 1,
        "field 'input' is int, not text": 1,
        "empty field 'output'": 1,
        "record is not an object": 1,
        "missing field 'input'": 1,
    }
    assert stats["first_offender"]["malformed JSON"].endswith("pairs.jsonl:2")

    _, renamed = prepared(
        tmp_path / "renamed",
        {"kd": pair_source(tmp_path / "pairs.jsonl", input_field="question", output_field="answer")},
    )
    assert renamed["sources"]["kd"]["stats"]["kept"] == 1  # field names are settings


def test_heldout_split_holds_out_whole_prompts_disjoint_from_training(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 200)
    with open(tmp_path / "pairs.jsonl", "a") as f:  # a second solution of a held-out-or-not prompt
        f.write(json.dumps({"input": pairs[0]["input"], "output": "Another way: count on by tens."}) + "\n")
    split = {"heldout_fraction": 0.2}
    cfg, manifest = prepared(
        tmp_path,
        {
            "kd": pair_source(tmp_path / "pairs.jsonl", split="train", **split),
            "held": pair_source(tmp_path / "pairs.jsonl", split="heldout", **split),
        },
    )

    def prompts(name):
        text = QWEN.decode((shard(cfg, manifest, name) & ID_MASK).tolist())
        return {doc.split("## Solution")[0] for doc in text.split("<|endoftext|>") if doc}

    train, held = prompts("kd"), prompts("held")
    assert not train & held and len(train | held) == 200 and 20 <= len(held) <= 60
    assert manifest["sources"]["kd"]["documents"] + manifest["sources"]["held"]["documents"] == 201


def datamodule(cfg, manifest, micro_batch=3, seq_len=16):
    plan = StagePlan(
        directory=str(cfg.dir),
        sources=manifest["sources"],
        stage="1",
        seq_len=seq_len,
        seed=0,
        stages=OmegaConf.to_container(cfg.stages),
    )
    return MixtureDataModule(plan, micro_batch=micro_batch, eot_id=QWEN.eot_id)


def test_batches_ignore_prompt_targets_and_number_documents_from_eot(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl", 30)
    cfg, manifest = prepared(tmp_path, {"kd": pair_source(tmp_path / "pairs.jsonl")})
    dm = datamodule(cfg, manifest)
    mixture = dm.plan.build()
    batch = next(iter(dm.train_dataloader()))
    windows = np.stack([mixture.get(i)[0] for i in range(3)])
    assert torch.equal(batch["input_ids"], torch.from_numpy((windows[:, :-1] & ID_MASK).astype(np.int64)))
    prompt_target = torch.from_numpy(windows[:, 1:] >= NO_LOSS_BIT)
    assert prompt_target.any() and (~prompt_target).any()
    assert torch.equal(batch["targets"] == IGNORE_INDEX, prompt_target)
    is_eot = batch["input_ids"] == QWEN.eot_id
    assert torch.equal(batch["documents"], is_eot.long().cumsum(1)) and batch["documents"].max() > 0

    dm_text = datamodule(
        *prepared(tmp_path / "text", {"kd": pair_source(tmp_path / "pairs.jsonl", loss_on="all")}, document_mask=False)
    )
    text_batch = next(iter(dm_text.train_dataloader()))
    assert "documents" not in text_batch and (text_batch["targets"] != IGNORE_INDEX).all()


def test_the_mask_survives_a_data_position_restore(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl", 30)
    cfg, manifest = prepared(tmp_path, {"kd": pair_source(tmp_path / "pairs.jsonl")})
    through = MixtureBatches(datamodule(cfg, manifest).plan, 0, 3, 0, 1, None, eot_id=QWEN.eot_id)
    mixture = through.plan.build()
    expected = [through.batch(mixture, j) for j in range(4)]
    resumed = datamodule(cfg, manifest)
    resumed.load_state_dict({**resumed.state_dict(), "position": 6})  # two batches of 3 sequences consumed
    for want, got in zip(expected[2:], iter(resumed.train_dataloader())):
        assert all(torch.equal(want[k], got[k]) for k in ("input_ids", "targets", "documents", "source"))


def test_document_rows_hold_each_pair_alone_after_eot(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 5)
    cfg, manifest = prepared(tmp_path, {"kd": pair_source(tmp_path / "pairs.jsonl")})
    input_ids, targets = datamodule(cfg, manifest, seq_len=64).document_rows("kd", 3)
    assert input_ids.shape[0] == 3 and (input_ids[:, 0] == QWEN.eot_id).all()
    prompt, output = QWEN.encode_ordinary(pairs[1]["input"]), QWEN.encode_ordinary(pairs[1]["output"])
    n = len(prompt) + len(output) + 1
    assert input_ids[1, 1:n].tolist() == prompt + output
    assert targets[1].tolist() == [IGNORE_INDEX] * len(prompt) + output + [QWEN.eot_id] + [IGNORE_INDEX] * (
        input_ids.shape[1] - n
    )
    with pytest.raises(Exception, match="held-out source 'nope' is not prepared"):
        datamodule(cfg, manifest).document_rows("nope", 1)
