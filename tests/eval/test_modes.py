import json
import subprocess
import sys

import pytest

from conftest import REPO, TINY_TRAIN_OVERRIDES

pytestmark = pytest.mark.slow  # every test runs eval.py as a subprocess


def run_eval(*args, cwd=REPO):
    return subprocess.run([sys.executable, "eval.py", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_rescore_cli_prints_the_summary_as_its_last_line(tmp_path):
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"work\n#### {i}"}) + "\n" for i in range(4)))
    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        "\n".join(
            json.dumps(p)
            for p in [
                {"doc_id": 0, "output": "The answer is 0."},
                {"doc_id": 1, "output": "#### 1"},
                {"doc_id": 3, "output": "I think 2"},
            ]
        )
        + "\n"
    )
    result = run_eval(
        "mode=rescore", "task=gsm8k", f"task.path={data}", f"predictions={preds}", f"hydra.run.dir={tmp_path / 'out'}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["task"], summary["n"], summary["accuracy"]) == ("gsm8k", 4, 0.5)
    assert summary["protocol"]["name"] == "standard" and summary["protocol"]["bare_percent"] is True
    records = [json.loads(line) for line in (tmp_path / "out" / "gsm8k.jsonl").read_text().splitlines()]
    assert records[2]["reason"] == "missing prediction"


def test_rescore_cli_malformed_predictions(tmp_path):
    data = tmp_path / "test.jsonl"
    data.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n")
    (tmp_path / "p.jsonl").write_text('{"output": "1"}\n')
    result = run_eval(
        "mode=rescore", f"task.path={data}", f"predictions={tmp_path / 'p.jsonl'}", f"hydra.run.dir={tmp_path / 'out'}"
    )
    assert (
        result.returncode == 2
        and result.stderr.strip() == f"error: {tmp_path / 'p.jsonl'}:1: each line needs an integer doc_id"
    )


def test_evaluate_and_generate_on_a_trained_checkpoint(tmp_path, data_root):
    train = subprocess.run(
        [
            sys.executable,
            "train.py",
            *TINY_TRAIN_OVERRIDES,
            f"paths.data_root={data_root}",
            "callbacks.heldout_eval.n=4",
            "callbacks.heldout_eval.max_new_tokens=4",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = run_eval(
        f"ckpt={ckpt}",
        "tasks=[arithmetic,word_problems]",
        "protocol=report",
        "protocol.subset=5",
        "protocol.generation.max_new_tokens=4",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["tasks"]["arithmetic"]["n"] == 5 and results["tasks"]["arithmetic"]["protocol"]["name"] == "report"
    header, _, row = (tmp_path / "eval" / "results.md").read_text().splitlines()
    assert header == "|model|arithmetic|word_problems|" and row.startswith(f"|{tmp_path.name}/run|")
    assert row.endswith("%|") and f"results written to {tmp_path / 'eval'}" in result.stderr
    assert list((tmp_path / "eval" / "tb").glob("events.out.tfevents.*"))
    gen = run_eval(
        "mode=generate",
        f"ckpt={ckpt}",
        "prompt='12 + 3 ='",
        "generate.max_new_tokens=3",
        f"hydra.run.dir={tmp_path / 'gen'}",
    )
    assert gen.returncode == 0 and gen.stdout.strip().startswith("12 + 3 =")
    assert not (tmp_path / "gen").exists()  # generate writes nothing: no directory left behind
