"""`python -m minimath.synthesize` end to end: the oracle, the `openai` backend against the fault-injecting local
server (SIGKILL and rerun, the key never written, a dead endpoint), and the `checkpoint` teacher, all through the
same pipeline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from minimath.model import ModelConfig, Transformer
from minimath.synthesis.pipeline import compact_prompt
from minimath.synthesis.store import AnswerCache
from minimath.synthesis.testing_server import ChatServer
from minimath.tokenizer import CompactTokenizer, get_tokenizer

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-9f8e7d6c5b4a"
OUTPUTS = ("data", "kd")
pytestmark = pytest.mark.slow  # every test runs the synthesis CLI as a subprocess


def synthesize(*overrides: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minimath.synthesize", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def dataset_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for d in OUTPUTS for p in sorted((out / d).glob("*"))}


def request_rows_without_timing(out: Path) -> list[dict]:
    """The per-request manifest, minus the seconds each call took (two runs that each paid measure two times)."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads((out / "requests.json").read_text())]


def arithmetic_reply(messages: list[dict]) -> str:
    """A well-formed teacher reply whose numbers depend on the request (so answers differ per request)."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
    a, b, c = 10 + digest[0], 10 + digest[1], 2 + digest[2] % 9
    return (
        f"## Question\nA shop has {a} red pens and {b} blue pens, packed in boxes of {c} pens each after adding "
        f"{c * (a + b)} more. How many pens are there?\n## Solution\nStep 1: {a} + {b} = {a + b}\n"
        f"Step 2: {a + b} × {c} = {(a + b) * c}\nThe answer is {(a + b) * c}."
    )


def common(tmp_path: Path, name: str, count: int = 40) -> list[str]:
    return [
        f"out={tmp_path / name}",
        f"cache_dir={tmp_path / (name + '-cache')}",
        f"seeds.count={count}",
        "verify.near_dedup.enabled=false",
        "verify.tool.enabled=false",
    ]


def openai_overrides(server: ChatServer, **client) -> list[str]:
    settings = {
        "base_url": server.url,
        "model": "teacher-x",
        "api_key_env": "MINIMATH_TEST_KEY",
        "concurrency": 2,
        "max_retries": 3,
        "backoff_base": 0.001,
        "backoff_max": 0.01,
        "timeout": 1.0,
        "failure_budget": 4,
        **client,
    }
    return ["teacher=openai", *(f"teacher.client.{k}={v}" for k, v in settings.items())]


def test_oracle_run_writes_verified_shards_and_a_manifest_and_a_rerun_pays_nothing(tmp_path):
    first = synthesize(*common(tmp_path, "o", 60), "prompts=all", "verify.tool.enabled=true")
    assert first.returncode == 0, first.stderr[-2000:]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["teacher"]["stand_in"] and manifest["teacher"]["backend"] == "oracle"
    assert manifest["requests"] == manifest["answered"] == 60 and manifest["cost_this_run"]["calls"] == 60
    rows = [json.loads(line) for line in (tmp_path / "o" / "data" / "part-00000.jsonl").read_text().splitlines()]
    assert len(rows) == manifest["examples"] == manifest["verify"]["kept"] > 30
    assert all(r["input"].startswith("## Question\n") and r["input"].endswith("## Solution\n") for r in rows)
    kd = [json.loads(line) for line in (tmp_path / "o" / "kd" / "part-00000.jsonl").read_text().splitlines()]
    assert len(kd) == len(rows) and all(k["input"].endswith("## Question\n") for k in kd)
    requests = json.loads((tmp_path / "o" / "requests.json").read_text())
    assert {
        "prompt_id",
        "text_hash",
        "backend",
        "model",
        "sampling",
        "tokens_in",
        "tokens_out",
        "seconds",
        "status",
    } <= set(requests[0]) and sum(r["status"] == "kept" for r in requests) == len(rows)
    before, requests_bytes = dataset_bytes(tmp_path / "o"), (tmp_path / "o" / "requests.json").read_bytes()
    again = synthesize(*common(tmp_path, "o", 60), "prompts=all", "verify.tool.enabled=true")
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["cost_this_run"].get("calls", 0) == 0
    assert dataset_bytes(tmp_path / "o") == before and (tmp_path / "o" / "requests.json").read_bytes() == requests_bytes


def test_openai_sigkill_and_rerun_give_the_uninterrupted_dataset_and_the_key_is_never_written(tmp_path):
    env = {"MINIMATH_TEST_KEY": KEY}
    with ChatServer(responder=arithmetic_reply, latency=0.1) as server:  # 40 requests, 2 at a time: ≥ 2 s to kill in
        whole = synthesize(*common(tmp_path, "whole"), *openai_overrides(server), env=env)
        assert whole.returncode == 0, whole.stderr[-2000:]
        calls_whole = len(server.received)
        cmd = [
            sys.executable,
            "-m",
            "minimath.synthesize",
            *common(tmp_path, "cut"),
            *openai_overrides(server),
            "flush_every=1",
        ]
        process = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        cache = tmp_path / "cut-cache"
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline and sum(p.read_bytes().count(b"\n") for p in cache.glob("answers-*.jsonl")) < 6
        ):
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not (tmp_path / "cut" / "manifest.json").exists()
        paid_before = len(AnswerCache(cache))
        assert 6 <= paid_before < 40
        received_before = len(server.received)
        rerun = synthesize(*common(tmp_path, "cut"), *openai_overrides(server), env=env)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        # the rerun asks only for what the killed run had not cached (plus nothing twice)
        assert len(server.received) - received_before == 40 - paid_before
        assert dataset_bytes(tmp_path / "cut") == dataset_bytes(tmp_path / "whole")
        assert request_rows_without_timing(tmp_path / "cut") == request_rows_without_timing(tmp_path / "whole")
        received_after = len(server.received)
        third = synthesize(*common(tmp_path, "cut"), *openai_overrides(server), env=env)
        assert third.returncode == 0 and len(server.received) == received_after  # a finished run sends nothing
        assert calls_whole == 40 and all(
            {k.lower(): v for k, v in r.headers.items()}.get("authorization") == f"Bearer {KEY}"
            for r in server.received
        )
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in whole.stdout + whole.stderr + rerun.stdout + rerun.stderr + third.stdout + third.stderr


def test_openai_missing_key_is_one_line_before_any_request(tmp_path):
    with ChatServer(responder=arithmetic_reply) as server:
        result = synthesize(*common(tmp_path, "nokey"), *openai_overrides(server), env={"MINIMATH_TEST_KEY": ""})
        assert len(server.received) == 0
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "MINIMATH_TEST_KEY" in lines[0]


def test_refused_connections_stop_in_one_line_after_the_budget_and_the_partial_dataset_resumes(tmp_path):
    env = {"MINIMATH_TEST_KEY": KEY}
    with ChatServer(responder=arithmetic_reply) as server:
        partial = synthesize(*common(tmp_path, "p", 12), *openai_overrides(server), env=env)
        assert partial.returncode == 0
        url = server.url
    dead = synthesize(
        *common(tmp_path, "p", 24), *openai_overrides(server), f"teacher.client.base_url={url}", env=env
    )  # the server is gone: refused connections
    assert dead.returncode == 2
    error = [line for line in dead.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "in a row" in error[0]
    assert len(AnswerCache(tmp_path / "p-cache")) == 12  # what was answered is kept
    with ChatServer(responder=arithmetic_reply) as server:
        resumed = synthesize(*common(tmp_path, "p", 24), *openai_overrides(server), env=env)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert len(server.received) == 12


def test_a_seed_text_longer_than_the_limit_is_a_counted_skip_or_a_recorded_truncation(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        "\n".join(
            json.dumps({"text": t})
            for t in ["Area of a 12 by 7 rectangle is 84.", "x" * 500 + " 3 + 4 = 7", "Half of 18 is 9."]
        )
    )
    source = ["seeds=files", f"seeds.source.paths=[{seeds}]", "seeds.max_chars=100"]
    skip = synthesize(*common(tmp_path, "skip", 10), *source, "seeds.on_too_long=skip")
    assert skip.returncode == 0, skip.stderr[-2000:]
    manifest = json.loads((tmp_path / "skip" / "manifest.json").read_text())
    assert manifest["seeds"]["texts"] == 2 and manifest["seeds"]["skipped"]["counts"] == {
        "longer than 100 characters": 1
    }
    cut = synthesize(*common(tmp_path, "cut", 10), *source)
    manifest = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert cut.returncode == 0 and manifest["seeds"]["texts"] == 3 and manifest["seeds"]["truncated"] == 1


def tiny_synthesis_checkpoint(path: Path) -> Path:
    """A random-weight project checkpoint whose compact vocabulary covers the compact prompts of generated texts."""
    import itertools
    import random

    from minimath.data.synth.textbook import TextbookSource

    texts = list(itertools.islice(TextbookSource().documents(random.Random(0)), 50))
    tokenizer = CompactTokenizer.from_corpus(get_tokenizer("qwen"), [compact_prompt("x", t) for t in texts])
    cfg = ModelConfig(
        vocab_size=tokenizer.vocab_size + 3,
        n_layer=2,
        n_head=4,
        n_kv_head=2,
        n_embd=32,
        ffn_hidden=64,
        max_seq_len=1024,
    )
    torch.manual_seed(0)
    model = Transformer(cfg)
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model": dataclasses.asdict(cfg), "tokenizer": tokenizer.state_dict()},
        },
        path,
    )
    return path


def test_the_checkpoint_teacher_writes_through_the_same_pipeline(tmp_path):
    ckpt = tiny_synthesis_checkpoint(tmp_path / "tiny.ckpt")
    args = [
        *common(tmp_path, "ck", 6),
        "teacher=checkpoint",
        f"ckpt={ckpt}",
        "teacher.client.batch_size=4",
        "sampling.max_tokens=8",
        "seeds.max_chars=300",
    ]
    result = synthesize(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "ck" / "manifest.json").read_text())
    assert manifest["teacher"]["backend"] == "checkpoint" and manifest["teacher"]["style"] == "compact"
    assert manifest["answered"] == 6 and manifest["tokens_total"]["out"] > 0
    # random weights write no parseable problem: every answer is a counted parse failure, none dropped silently
    assert sum(manifest["parse"]["counts"].values()) + manifest["parse"]["parsed"] == 6
    rerun = synthesize(*args)
    assert json.loads((tmp_path / "ck" / "manifest.json").read_text())["cost_this_run"].get("calls", 0) == 0
    assert rerun.returncode == 0


def test_a_checkpoint_directory_is_a_one_line_error(tmp_path):
    result = synthesize(*common(tmp_path, "d", 2), "teacher=checkpoint", f"ckpt={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: ckpt={tmp_path} is a directory: pass {tmp_path}/checkpoints/final.ckpt"
    ]


@pytest.mark.parametrize("teacher", ["vllm"])
def test_vllm_without_vllm_or_a_gpu_stops_in_one_line(tmp_path, teacher):
    result = synthesize(*common(tmp_path, "v", 2), f"teacher={teacher}", "teacher.client.path=/nonexistent")
    assert result.returncode == 2 and result.stderr.strip().startswith("error: teacher=vllm needs")


def test_the_hf_teacher_writes_through_the_same_pipeline(tmp_path):
    from minimath.export import export

    model_dir = export(tiny_synthesis_checkpoint(tmp_path / "tiny.ckpt"), tmp_path / "hf_model")
    args = [
        *common(tmp_path, "hf", 4),
        "teacher=hf",
        f"teacher.client.path={model_dir}",
        "teacher.client.batch_size=2",
        "sampling.max_tokens=6",
        "seeds.max_chars=200",
    ]
    result = synthesize(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "hf" / "manifest.json").read_text())
    assert manifest["teacher"]["backend"] == "hf" and manifest["answered"] == 4
    assert 0 < manifest["tokens_total"]["out"] <= 4 * 6
