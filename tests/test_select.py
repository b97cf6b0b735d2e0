"""`python -m minimath.select`: the outputs, ids that `seeds.selection` reads back, a ranking that depends on the seed
but not on the batch size, an interrupted run that resumes from the feature cache to the same ranking, the n-gram
baseline, and one-line errors."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from pathlib import Path

import pytest
import torch

from minimath.data.synth.textbook import TextbookSource
from minimath.errors import Interrupted, UserError
from minimath.influence import FeatureExtractor
from minimath.model import ModelConfig, Transformer
from minimath.select import select, selection_size
from minimath.synthesis import pipeline
from minimath.synthesize import build
from minimath.tokenizer import CompactTokenizer, get_tokenizer

from conftest import compose_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (see tests/conftest.py)


@pytest.fixture
def ckpt(tmp_path) -> Path:
    """A random-weight checkpoint whose compact vocabulary covers math texts only, so the equations of the
    reference set hit unknown tokens (counted in the manifest)."""
    texts = list(itertools.islice(TextbookSource().documents(random.Random(0)), 30))
    tokenizer = CompactTokenizer.from_corpus(get_tokenizer("qwen"), texts)
    cfg = ModelConfig(
        vocab_size=tokenizer.vocab_size, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_hidden=64, max_seq_len=64
    )
    torch.manual_seed(0)
    model = Transformer(cfg)
    path = tmp_path / "tiny.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model": dataclasses.asdict(cfg), "tokenizer": tokenizer.state_dict()},
        },
        path,
    )
    return path


def overrides(tmp_path: Path, name: str, ckpt: Path | None, *extra: str) -> list[str]:
    return [
        f"out={tmp_path / name}",
        f"cache_dir={tmp_path / (name + '-cache')}",
        "candidates.count=12",
        "reference.count=4",
        "reference.source.documents_count=4",
        "max_len=32",
        "d=32",
        "chunk_size=5000",
        "top_k=3",
        "top_fraction=null",
        *([f"ckpt={ckpt}"] if ckpt else []),
        *extra,
    ]


def run(tmp_path: Path, args: list[str]) -> dict:
    return select(compose_config(args, tmp_path, config_name="select"))


def ranking(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ranking.jsonl").read_text().splitlines()]


def test_select_writes_a_ranking_a_selection_synthesize_reads_a_histogram_and_a_manifest(tmp_path, ckpt):
    manifest = run(tmp_path, overrides(tmp_path, "a", ckpt, "subset=lora:2"))
    out = tmp_path / "a"
    rows = ranking(out)
    assert [r["rank"] for r in rows] == list(range(1, 13)) and {r["source"] for r in rows} == {"math_text"}
    assert all(a["score_mean"] >= b["score_mean"] for a, b in zip(rows, rows[1:]))
    assert all(-1 <= r["score_mean"] <= r["score_max"] <= 1 for r in rows)
    assert (out / "histogram.png").read_bytes()[:4] == b"\x89PNG"
    assert manifest["seed"] == 1234 and manifest["projection_seed"] == 0 and manifest["d"] == 32
    assert manifest["subset"] == "lora:2" and manifest["subset_parameters"] == 2 * 2 * (
        32 + 16 + 16 + 32 + 64 + 32 + 64
    )
    assert manifest["checkpoint"]["sha256"] and manifest["candidates"]["texts"] == 12 and manifest["selected"] == 3
    assert 0 < manifest["unknown_token_rate"] < 1 and manifest["features"] == {
        "computed": 16,
        "cached": 0,
        "cache": manifest["features"]["cache"],
    }
    assert json.loads((out / "manifest.json").read_text()) == manifest
    # what python -m minimath.synthesize keeps with seeds.selection=selected.jsonl: exactly the top 3
    cfg = compose_config(["seeds.count=12"], tmp_path, config_name="synthesize")
    texts, _, _ = pipeline.read_seed_texts(
        build(cfg.seeds.source, name=str(cfg.seeds.name)),
        12,
        2000,
        pipeline.read_selection(str(out / "selected.jsonl")),
        "truncate",
    )
    assert [t.seed_id for t in texts] == sorted((r["id"] for r in rows[:3]), key=lambda i: int(i.split("#")[1]))


def test_ranking_is_deterministic_for_a_seed_and_does_not_depend_on_the_batch_size(tmp_path, ckpt):
    run(tmp_path, overrides(tmp_path, "b3", ckpt, "batch_size=3"))
    run(tmp_path, overrides(tmp_path, "b8", ckpt, "batch_size=8"))
    run(tmp_path, overrides(tmp_path, "b8again", ckpt, "batch_size=8"))
    run(tmp_path, overrides(tmp_path, "other", ckpt, "projection_seed=1"))
    b3, b8 = ranking(tmp_path / "b3"), ranking(tmp_path / "b8")
    assert [r["id"] for r in b3] == [r["id"] for r in b8]
    assert all(abs(x["score_mean"] - y["score_mean"]) < 1e-5 for x, y in zip(b3, b8))
    assert (tmp_path / "b8again" / "ranking.jsonl").read_bytes() == (tmp_path / "b8" / "ranking.jsonl").read_bytes()
    assert [r["score_mean"] for r in ranking(tmp_path / "other")] != [r["score_mean"] for r in b8]


def test_an_interrupted_run_resumes_from_the_cache_to_the_uninterrupted_ranking(tmp_path, ckpt, monkeypatch):
    run(tmp_path, overrides(tmp_path, "whole", ckpt, "batch_size=4"))
    calls = []
    real = FeatureExtractor.features

    def interrupted_after_two(self, examples):
        calls.append(len(examples))
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(self, examples)

    monkeypatch.setattr(FeatureExtractor, "features", interrupted_after_two)
    with pytest.raises(Interrupted, match="rerun the same command"):
        run(tmp_path, overrides(tmp_path, "cut", ckpt, "batch_size=4"))
    assert not (tmp_path / "cut" / "ranking.jsonl").exists()

    def counted(self, examples):
        calls.append(len(examples))
        return real(self, examples)

    monkeypatch.setattr(FeatureExtractor, "features", counted)
    calls.clear()
    resumed = run(tmp_path, overrides(tmp_path, "cut", ckpt, "batch_size=4"))
    assert calls == [4, 4] and resumed["features"]["computed"] == 8 and resumed["features"]["cached"] == 8
    assert ranking(tmp_path / "cut") == ranking(tmp_path / "whole")
    calls.clear()
    again = run(tmp_path, overrides(tmp_path, "cut", ckpt, "batch_size=4"))
    assert calls == [] and again["features"]["computed"] == 0
    assert ranking(tmp_path / "cut") == ranking(tmp_path / "whole")


def test_the_ngram_baseline_ranks_the_text_that_shares_the_references_words_first(tmp_path):
    texts = [
        "The river runs past the old mill and the village market.",
        "Solve 3x + 4 = 19. Subtract 4 from both sides: 3x = 15. Divide both sides by 3: x = 5. So x = 5.",
        "A good story needs characters that the reader cares about.",
    ]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    manifest = run(
        tmp_path,
        overrides(
            tmp_path,
            "ng",
            None,
            "method=ngram",
            "seeds@candidates=files",
            f"candidates.source.paths=[{tmp_path / 'c.jsonl'}]",
            "top_k=1",
        ),
    )
    rows = ranking(tmp_path / "ng")
    assert rows[0]["id"] == f"{tmp_path / 'c.jsonl'}:2" and manifest["method"] == "ngram"
    assert rows[0]["score_mean"] > 0 and rows[-1]["score_mean"] < rows[0]["score_mean"]


def test_selection_size_needs_exactly_one_of_top_k_and_top_fraction():
    assert selection_size(10, None, 0.25) == 3 and selection_size(10, 20, None) == 10
    for bad in ((None, None), (3, 0.5), (0, None), (None, 1.5)):
        with pytest.raises(UserError):
            selection_size(10, *bad)


def test_adam_without_optimizer_state_is_one_error_line(tmp_path, ckpt):
    with pytest.raises(UserError, match="no optimizer state") as err:
        run(tmp_path, overrides(tmp_path, "x", ckpt, "precondition=adam", "subset=last:1"))
    assert "\n" not in str(err.value) and not (tmp_path / "x" / "ranking.jsonl").exists()
