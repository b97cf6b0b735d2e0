import json
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from minimath.data.prepare import prepare
from minimath.data.shards import DTYPE
from minimath.errors import UserError
from minimath.tokenizer import get_tokenizer

from conftest import REPO


def data_config(tmp_path, sources, eval_sets=(), stages=None):
    cfg = {
        "name": "t",
        "tokenizer": "qwen",
        "dir": str(tmp_path / "prepared"),
        "shard_tokens": 1000,
        "workers": 1,
        "clean": {"min_chars": 5, "max_chars": 10000, "dedup": True, "near_dedup": False, "near_threshold": 0.8},
        "decontaminate": {"n": 8, "eval_sets": list(eval_sets)},
        "sources": sources,
    }
    if stages:
        cfg["stages"] = stages
    return OmegaConf.create(cfg)


def synthetic(generator, count):
    return {
        "_target_": "minimath.data.sources.SyntheticSource",
        "generator": {"_target_": generator},
        "documents_count": count,
        "seed": 1,
    }


GENERAL = "minimath.data.synth.general.GeneralTextSource"
WORDS = "minimath.data.synth.word_problems.WordProblemSource"


def test_prepare_writes_shards_manifest_and_report_then_skips(tmp_path):
    stages = {
        "1": {
            "tokens": 5000,
            "epochs": 1,
            "mix": [{"source": "general", "share": 0.6}, {"source": "words", "share": 0.4}],
        },
        "2": {"tokens": 5000, "epochs": 2, "mix": [{"stage": 1, "share": 0.5}, {"source": "words", "share": 0.5}]},
    }
    cfg = data_config(tmp_path, {"general": synthetic(GENERAL, 60), "words": synthetic(WORDS, 40)}, stages=stages)
    logs = []
    manifest = prepare(cfg, log=logs.append)
    out = tmp_path / "prepared"
    general = manifest["sources"]["general"]
    assert general["documents"] == 60 and len(general["shards"]) > 1  # shard_tokens=1000 forces several
    tokens = np.concatenate([np.fromfile(out / s["file"], dtype=DTYPE) for s in general["shards"]])
    assert len(tokens) == general["tokens"]
    qwen = get_tokenizer("qwen")
    first_doc = qwen.decode(tokens[: int(np.argmax(tokens == qwen.eot_id))].tolist())
    assert first_doc.startswith(("On Sunday", "星期天", "本报讯", "Riverton", "Hillview", "Lakeside", "Maple", "Stone"))
    assert set(general["used_ids"]) == set(np.unique(tokens).tolist())
    report = (out / "composition.md").read_text()
    assert "| general | 60.0% | 3K |" in report and "| stage_1 | 50.0% |" in report
    assert (out / "stage-1-data.png").read_bytes()[:4] == b"\x89PNG" and (out / "stage-2-data.png").is_file()

    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    logs.clear()
    assert prepare(cfg, log=logs.append)["sources"] == manifest["sources"]
    assert all("up to date" in line for line in logs)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes

    cfg.sources.words.documents_count = 50  # only the changed source is prepared again
    logs.clear()
    again = prepare(cfg, log=logs.append)
    assert again["sources"]["words"]["documents"] == 50 and "general: up to date" in logs[0]


def test_bad_input_summary_and_decontamination(tmp_path):
    item = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
    (tmp_path / "test.jsonl").write_text(json.dumps({"question": item}) + "\n")
    lines = [
        json.dumps({"text": "A clean training document about fractions."}),
        '{"text": "broken',
        json.dumps({"text": "A clean training document about fractions."}),
        json.dumps({"text": ""}),
        json.dumps({"text": "Copied: " + item}),
        json.dumps({"other": 1}),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    source = {"_target_": "minimath.data.sources.FileSource", "paths": [str(tmp_path / "train.jsonl")]}
    eval_sets = [{"name": "gsm8k_test", "path": str(tmp_path / "test.jsonl"), "fields": ["question"]}]
    manifest = prepare(data_config(tmp_path, {"local": source}, eval_sets=eval_sets), log=lambda *_: None)
    stats = manifest["sources"]["local"]["stats"]
    assert stats["kept"] == 1
    assert stats["skipped"] == {
        "malformed JSON": 1,
        "exact duplicate": 1,
        "empty document": 1,
        "overlaps evaluation set gsm8k_test": 1,
        "missing field 'text'": 1,
    }
    assert stats["first_offender"]["malformed JSON"].endswith("train.jsonl:2")
    listed = {"path": str(tmp_path / "test.jsonl"), "removed": {"local": 1}}  # the hand-written form still works
    assert manifest["decontamination"] == {"sets": {"gsm8k_test": listed}, "skipped": {}}


def test_a_wholly_unusable_source_is_an_error(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"broken\n{"also": "no text"}\n')
    source = {"_target_": "minimath.data.sources.FileSource", "paths": [str(tmp_path / "bad.jsonl")]}
    with pytest.raises(UserError, match="source bad produced no usable documents"):
        prepare(data_config(tmp_path, {"bad": source}), log=lambda *_: None)


@pytest.mark.slow
def test_prepare_cli(tmp_path):
    args = [
        f"data.sources.{n}.documents_count=20"
        for n in ("general_en", "general_zh", "math_text", "word_problems_cot", "basic_math", "equations")
    ]
    result = subprocess.run(
        [sys.executable, "-m", "minimath.data.prepare", "data=embedded", f"paths.data_root={tmp_path}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "embedded-qwen" / "manifest.json").read_text())
    assert sorted(manifest["sources"]) == [
        "basic_math",
        "equations",
        "general_en",
        "general_zh",
        "math_text",
        "word_problems_cot",
    ]
    assert "basic_math: read 20, kept" in result.stdout + result.stderr


def test_edited_input_files_are_prepared_again_and_force_prepares_everything(tmp_path):
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"text": f"document number {i} about numbers"}) + "\n" for i in range(5)))
    cfg = data_config(tmp_path, {"mine": {"_target_": "minimath.data.sources.FileSource", "paths": [str(mine)]}})
    lines = []
    first = prepare(cfg, log=lines.append)["sources"]["mine"]
    assert first["documents"] == 5 and list(first["inputs"].values())[0]["size"] == mine.stat().st_size
    prepare(cfg, log=lines.append)
    assert lines[-1].startswith("mine: up to date")
    with mine.open("a") as f:  # appended documents: same config, new content
        f.write("".join(json.dumps({"text": f"appended document {i} with words"}) + "\n" for i in range(60)))
    again = prepare(cfg, log=lines.append)["sources"]["mine"]
    assert any(line == "mine: input changed (mine.jsonl): preparing again" for line in lines)
    assert again["documents"] == 65
    prepare(cfg, log=lines.append, force=True)
    assert "mine: preparing again (force=true)" in lines


def _prepare_after(barrier, cfg) -> None:
    barrier.wait()
    prepare(cfg, log=lambda *_: None)


def test_two_seeds_prepared_at_once_into_one_directory_give_the_shards_of_each_alone(tmp_path):
    """Files are named by content (the generator's seed included): neither run overwrites or reads the other's."""
    import multiprocessing as mp

    def config(root, seed):
        cfg = data_config(root, {"general": synthetic(GENERAL, 300), "words": synthetic(WORDS, 200)})
        for source in cfg.sources.values():
            source.seed = seed
        return cfg

    alone = {seed: prepare(config(tmp_path / f"alone{seed}", seed), log=lambda *_: None)["sources"] for seed in (1, 7)}
    context = mp.get_context("fork")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_prepare_after, args=(barrier, config(tmp_path / "shared", seed))) for seed in (1, 7)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    for seed in (1, 7):
        logs = []
        shared = prepare(config(tmp_path / "shared", seed), log=logs.append)["sources"]
        assert all("up to date" in line for line in logs)  # each finds its own files, whole
        assert {n: [s["sha256"] for s in e["shards"]] for n, e in shared.items()} == {
            n: [s["sha256"] for s in e["shards"]] for n, e in alone[seed].items()
        }
    assert alone[1]["general"]["shards"][0]["sha256"] != alone[7]["general"]["shards"][0]["sha256"]
