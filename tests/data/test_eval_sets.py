"""Decontamination configured from the task registry: each named task's file (its conf/task YAML under
paths.eval_root, read by eval.py's loader) is protected, a training document copying one of its items is removed and
counted under that benchmark and its source in the manifest and the log, and a benchmark whose file is missing is a
counted, reported skip (or an error when required)."""

import json

import pytest

from minimath.data.eval_sets import resolve_eval_sets
from minimath.data.prepare import prepare
from minimath.errors import UserError
from minimath.eval.tasks import public_task_names

from conftest import BENCHMARK_ITEMS, compose_config, copy_of, small_data_config, write_benchmark_files

# The tasks named (a suite's name stands for its tasks) and those of them whose file the tests write.
TASKS = ["math", "mmlu", "ape210k", "jiuzhang"]
WRITTEN = ["math", "math500", "mmlu", "ape210k", "svamp_all", "tabmwp", "asdiv"]
# A TabMWP item of another table under the same title: it shares JiuZhang3.0's heading line with the protected
# item ("Read the following table regarding ... and answer a question:"), which is framing, not the item.
SAME_HEADING = (
    'Read the following table regarding "Broken cookies per pack" and answer a question:\n'
    "Stem | Leaf \n5 | 0 1\n6 | 2 2 9\nHow many packs had fewer than 52 broken cookies?"
)
CLEAN = "A clean training document about adding fractions with unlike denominators, step by step."


def decontaminate(root, tasks=TASKS, **extra) -> dict:
    return {"n": 13, "tasks": tasks, "eval_root": str(root), "required": [], "eval_sets": [], **extra}


def file_source(path, texts) -> dict:
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return {"_target_": "minimath.data.sources.FileSource", "paths": [str(path)]}


def data_config(tmp_path, root, **decon):
    web = file_source(tmp_path / "web.jsonl", [copy_of("math"), copy_of("mmlu"), copy_of("ape210k"), CLEAN])
    forum = [copy_of("svamp_all"), copy_of("tabmwp"), copy_of("asdiv"), copy_of("gsm8k"), SAME_HEADING, CLEAN + " 2"]
    cfg = small_data_config(tmp_path / "prepared", {"web": web, "forum": file_source(tmp_path / "forum.jsonl", forum)})
    cfg.decontaminate = decontaminate(root, **decon)
    return cfg


def test_a_copy_of_each_registry_benchmark_is_removed_and_counted_per_benchmark_and_source(tmp_path):
    root = tmp_path / "eval"
    write_benchmark_files(root, WRITTEN)
    logs = []
    manifest = prepare(data_config(tmp_path, root), log=logs.append)

    counts = manifest["decontamination"]
    assert list(counts["sets"]) == ["math", "mmlu", "ape210k", "math500", "svamp_all", "tabmwp", "asdiv"]
    removed = {name: protected["removed"] for name, protected in counts["sets"].items()}
    assert removed == {
        "math": {"web": 1, "forum": 0},
        "mmlu": {"web": 1, "forum": 0},
        "ape210k": {"web": 1, "forum": 0},
        "math500": {"web": 1, "forum": 0},  # MATH-500 is part of MATH's test set: the same copy counts for both
        "svamp_all": {"web": 0, "forum": 1},
        "tabmwp": {"web": 0, "forum": 1},
        "asdiv": {"web": 0, "forum": 1},
    }
    assert counts["sets"]["mmlu"]["path"] == str(root / "mmlu/test/*.csv")
    web, forum = (manifest["sources"][s]["stats"] for s in ("web", "forum"))
    assert web["kept"] == 1 and forum["kept"] == 3  # the clean ones, GSM8K's copy (no file) and the same heading
    assert web["skipped"] == {
        "overlaps evaluation sets math, math500": 1,
        "overlaps evaluation set mmlu": 1,
        "overlaps evaluation set ape210k": 1,
    }
    assert "decontamination math: removed 1 document(s) (web 1)" in logs
    assert "decontamination tabmwp: removed 1 document(s) (forum 1)" in logs
    assert any(line.startswith("decontaminate against mmlu: 1 items from") for line in logs)

    again = []  # nothing to prepare: the counts are printed again from the manifest
    assert prepare(data_config(tmp_path, root), log=again.append) == manifest
    assert any(line.startswith("web: up to date") for line in again)
    assert "decontamination math: removed 1 document(s) (web 1)" in again


def test_a_missing_benchmark_file_is_a_counted_reported_skip_until_it_appears(tmp_path):
    root = tmp_path / "eval"
    write_benchmark_files(root, WRITTEN)
    logs = []
    manifest = prepare(data_config(tmp_path, root), log=logs.append)
    missing = {"gsm8k": "gsm8k/test.jsonl", "gsm_hard": "gsm-hard/test.jsonl", "mawps": "mawps/test.jsonl"}
    missing["carp_en"] = "carp_en/test.jsonl"
    assert manifest["decontamination"]["skipped"] == {name: str(root / path) for name, path in missing.items()}
    assert "decontamination: 4 evaluation set(s) skipped, their files missing" in logs
    gsm8k = (
        f"decontamination skipped gsm8k: no file {root / 'gsm8k/test.jsonl'} (put it there, or set paths.eval_root=DIR)"
    )
    assert gsm8k in logs

    write_benchmark_files(root, ["gsm8k"])  # the file appears: the sources are decontaminated against it too
    logs.clear()
    manifest = prepare(data_config(tmp_path, root), log=logs.append)
    assert manifest["decontamination"]["sets"]["gsm8k"]["removed"] == {"web": 0, "forum": 1}
    assert (
        "gsm8k" not in manifest["decontamination"]["skipped"]
        and "decontamination gsm8k: removed 1 document(s) (forum 1)" in logs
    )


def test_a_required_benchmark_whose_file_is_missing_stops_prepare(tmp_path):
    root = tmp_path / "eval"
    write_benchmark_files(root, WRITTEN)
    with pytest.raises(UserError, match=r"required evaluation set gsm8k \(.*gsm8k/test.jsonl\) has no file"):
        prepare(data_config(tmp_path, root, required=["gsm8k"]), log=lambda *_: None)
    assert not (tmp_path / "prepared" / "manifest.json").exists()


def test_registry_names_that_protect_nothing_are_errors(tmp_path):
    with pytest.raises(UserError, match="arithmetic is a held-out set"):
        resolve_eval_sets(decontaminate(tmp_path, ["arithmetic"]))
    with pytest.raises(UserError, match="unknown task 'gsm9k'"):
        resolve_eval_sets(decontaminate(tmp_path, ["gsm9k"]))
    with pytest.raises(UserError, match="required names"):
        resolve_eval_sets(decontaminate(tmp_path, ["math"], required=["mmlu"]))
    listed = [{"name": "math", "path": str(tmp_path / "x.jsonl"), "fields": ["problem"]}]
    with pytest.raises(UserError, match="math is named twice"):
        resolve_eval_sets(decontaminate(tmp_path, ["math"], eval_sets=listed))


def test_listed_and_registry_sets_together(tmp_path):
    """The hand-written form (`eval_sets: [{name, path, fields, format}]`) still works beside registry tasks."""
    root = tmp_path / "eval"
    write_benchmark_files(root, ["math"])
    listed = tmp_path / "mine.json"
    listed.write_text(json.dumps([{"q": BENCHMARK_ITEMS["asdiv"][1]["body"]}]))
    cfg = decontaminate(
        root, ["math"], eval_sets=[{"name": "mine", "path": str(listed), "fields": ["q"], "format": "json"}]
    )
    sets = resolve_eval_sets(cfg)
    assert [s.name for s in sets.present] == ["math", "mine"] and not sets.skipped


def test_the_report_data_and_the_synthesis_verifier_protect_every_benchmark_task(tmp_path):
    report = compose_config(["data=report", f"paths.eval_root={tmp_path}"], tmp_path, config_name="prepare")
    synthesis = compose_config([f"paths.eval_root={tmp_path}"], tmp_path, config_name="synthesize")
    for block in (report.data.decontaminate, synthesis.verify.decontaminate):
        sets = resolve_eval_sets(block)
        assert list(sets.skipped) == public_task_names()
    assert {"math", "mmlu", "ceval", "cmmlu", "ape210k", "gsm8k", "math23k", "math500", "tabmwp"} <= set(sets.skipped)
    assert sets.skipped["ceval"] == f"{tmp_path}/ceval/val/*.csv"
