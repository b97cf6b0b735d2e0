"""The `openai` teacher against a real local HTTP server that injects faults (minimath.synthesis.testing_server)."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import socket
from collections import Counter

import hydra
import pytest
from omegaconf import OmegaConf

from minimath.config import CONF_DIR
from minimath.errors import UserError
from minimath.synthesis.records import Request, Sampling, text_hash
from minimath.synthesis.teachers.openai_teacher import OpenAITeacher, retry_after_seconds
from minimath.synthesis.testing_server import ChatServer, Fault, echo_hash

KEY = "sk-test-abc123"


def make_requests(*contents: str, sampling: Sampling | None = None) -> list[Request]:
    sampling = sampling or Sampling(max_tokens=32, seed=7)
    return [
        Request(
            prompt_id="p",
            seed_id=f"s{i}",
            text_hash=text_hash(c),
            sampling=sampling,
            messages=(("system", "Solve step by step."), ("user", c)),
        )
        for i, c in enumerate(contents)
    ]


def calls_for(server: ChatServer, content: str) -> int:
    return sum(body["messages"][-1]["content"] == content for body in server.bodies())


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_every_request_is_answered_exactly_once_through_transient_faults(chat_server, make_teacher):
    chat_server.script("q-429", Fault("429", retry_after="0.01"))
    chat_server.script("q-500", "500", "500")
    chat_server.script("q-stall", "stall")
    chat_server.script("q-malformed", "malformed")
    chat_server.script("q-no-choices", "no choices")
    requests = make_requests("q-429", "q-500", "q-stall", "q-malformed", "q-no-choices", "q-a", "q-b", "q-c")
    teacher = make_teacher(chat_server.url)

    completions = list(teacher.complete(requests))

    assert sorted(c.request.seed_id for c in completions) == sorted(r.seed_id for r in requests)
    assert all(c.ok and c.text == echo_hash(c.request.chat()) for c in completions)
    assert all(c.tokens_in > 0 and c.tokens_out == 2 and c.finish_reason == "stop" for c in completions)
    sent = Counter(body["messages"][-1]["content"] for body in chat_server.bodies())
    assert sent == {
        "q-429": 2,
        "q-500": 3,
        "q-stall": 2,
        "q-malformed": 2,
        "q-no-choices": 2,
        "q-a": 1,
        "q-b": 1,
        "q-c": 1,
    }
    assert teacher.stats.to_dict() == {
        "calls": 14,
        "retries": 6,
        "answered": 8,
        "failures": {},
        "tokens_in": sum(c.tokens_in for c in completions),
        "tokens_out": 16,
    }


def test_permanent_failures_are_counted_by_reason_and_answers_are_not_retried(chat_server, make_teacher):
    for kind in ("500", "429", "stall", "refusal", "content filter", "context length"):
        chat_server.script(f"q-{kind}", kind, forever=True)
    requests = make_requests("q-500", "q-429", "q-stall", "q-refusal", "q-content filter", "q-context length", "q-ok")
    teacher = make_teacher(chat_server.url, max_retries=2)

    failures = {c.request.seed_id: c.failure for c in teacher.complete(requests)}

    assert failures == {
        "s0": "http 500",
        "s1": "http 429",
        "s2": "timeout",
        "s3": "refusal",
        "s4": "refusal",
        "s5": "context length",
        "s6": None,
    }
    assert teacher.stats.failures == {"http 500": 1, "http 429": 1, "timeout": 1, "refusal": 2, "context length": 1}
    assert [calls_for(chat_server, r.messages[-1][1]) for r in requests] == [3, 3, 3, 1, 1, 1, 1]


def test_retry_after_is_honoured(chat_server, make_teacher):
    chat_server.script("q", Fault("429", retry_after="0.3"), Fault("503", retry_after="0.3"))

    [completion] = make_teacher(chat_server.url, backoff_max=0.001).complete(make_requests("q"))

    assert completion.ok and calls_for(chat_server, "q") == 3
    assert completion.seconds >= 0.6  # two waits of the server's 0.3 s, not the 1 ms backoff


def test_retry_after_reads_seconds_and_http_dates():
    now = 1_700_000_000.0
    assert retry_after_seconds("2", now) == 2.0
    assert retry_after_seconds("0.25", now) == 0.25
    assert retry_after_seconds(email.utils.formatdate(now + 30, usegmt=True), now) == 30.0
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("soon", now) is None


def test_key_travels_only_in_the_authorization_header(chat_server, make_teacher, monkeypatch, tmp_path, caplog, capsys):
    monkeypatch.setenv("OPENAI_TEST_KEY", KEY)
    caplog.set_level(logging.DEBUG)  # the openai client's and httpx's own debug logs included
    chat_server.script("q-500", "500")
    teacher = make_teacher(chat_server.url, api_key_env="OPENAI_TEST_KEY")
    completions = list(teacher.complete(make_requests("q-500", "q-ok")))
    (tmp_path / "answers.jsonl").write_text("".join(json.dumps(dataclasses.asdict(c)) + "\n" for c in completions))
    (tmp_path / "manifest.json").write_text(
        json.dumps({"teacher": repr(teacher), "stats": teacher.stats.to_dict(), "settings": vars(teacher)}, default=str)
    )
    print(teacher, teacher.stats)
    with pytest.raises(UserError) as refused:
        list(
            make_teacher(closed_port_url(), api_key_env="OPENAI_TEST_KEY", failure_budget=1).complete(
                make_requests("q")
            )
        )

    assert [r.headers["authorization"] for r in chat_server.received] == [f"Bearer {KEY}"] * 3
    written = [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    captured = capsys.readouterr()
    assert len(written) == 2 and caplog.text
    assert not any(KEY in text for text in [*written, caplog.text, captured.out, captured.err, str(refused.value)])


def test_missing_key_variable_is_a_one_line_error_before_any_request(chat_server, make_teacher, monkeypatch):
    monkeypatch.delenv("OPENAI_TEST_KEY", raising=False)
    monkeypatch.setenv("OPENAI_EMPTY_KEY", " ")
    for name in ("OPENAI_TEST_KEY", "OPENAI_EMPTY_KEY"):
        with pytest.raises(UserError) as err:
            make_teacher(chat_server.url, api_key_env=name)
        assert name in str(err.value) and "\n" not in str(err.value)
    assert chat_server.received == []


def test_rejected_key_is_a_one_line_error_naming_the_variable_not_the_key(chat_server, make_teacher, monkeypatch):
    monkeypatch.setenv("OPENAI_TEST_KEY", KEY)
    chat_server.script("q", "401")

    with pytest.raises(UserError, match="rejected the key in \\$OPENAI_TEST_KEY \\(http 401\\)") as err:
        list(make_teacher(chat_server.url, api_key_env="OPENAI_TEST_KEY").complete(make_requests("q")))
    assert KEY not in str(err.value) and len(chat_server.received) == 1


def test_no_key_variable_sends_a_placeholder_not_the_environment_key(chat_server, make_teacher, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    list(make_teacher(chat_server.url, api_key_env=None).complete(make_requests("q")))

    assert [r.headers["authorization"] for r in chat_server.received] == ["Bearer EMPTY"]


def test_endpoint_refusing_connections_stops_after_the_failure_budget(make_teacher):
    pulled = []
    requests = (pulled.append(r) or r for r in make_requests(*(f"q{i}" for i in range(100))))
    teacher = make_teacher(closed_port_url(), concurrency=2, max_retries=1, failure_budget=5)

    with pytest.raises(UserError) as err:
        list(teacher.complete(requests))

    message = str(err.value)
    assert "\n" not in message and "requests in a row (connection ×" in message and "0 answers so far" in message
    assert teacher.stats.failures["connection"] >= 5 and len(pulled) <= 5 + 2
    assert teacher.stats.retries >= teacher.stats.failures["connection"]  # each counted failure was retried once


def test_answers_before_the_budget_is_spent_reach_the_caller(chat_server, make_teacher):
    chat_server.script("down", "500", forever=True)
    requests = make_requests("up-0", "up-1", "up-2", *(f"down-{i}" for i in range(20)))
    received = []

    with pytest.raises(UserError, match="5 requests in a row \\(http 500 ×5\\).*the 3 answers so far are kept"):
        for completion in make_teacher(chat_server.url, concurrency=1, max_retries=0).complete(requests):
            received.append(completion)

    assert [c.ok for c in received] == [True] * 3 + [False] * 5
    assert len(chat_server.received) == 8


def test_failures_in_a_row_count_across_units(chat_server, make_teacher):
    chat_server.script("down", "500", forever=True)
    teacher = make_teacher(chat_server.url, concurrency=1, max_retries=0, failure_budget=4)
    units = [make_requests("down-a", "down-b"), make_requests("down-c", "down-d", "down-e")]

    assert len(list(teacher.complete(units[0]))) == 2
    with pytest.raises(UserError, match="4 requests in a row"):
        list(teacher.complete(units[1]))
    assert len(chat_server.received) == 4


def test_concurrency_limit_is_respected():
    with ChatServer(latency=0.2) as server:
        teacher = OpenAITeacher(
            base_url=server.url,
            model="m",
            api_key_env=None,
            concurrency=4,
            max_retries=0,
            backoff_base=0.001,
            backoff_max=0.01,
            timeout=2.0,
            failure_budget=5,
            seed=0,
        )
        completions = list(teacher.complete(make_requests(*(f"q{i}" for i in range(12)))))

    assert len(completions) == 12 and all(c.ok for c in completions)
    assert server.max_in_flight == 4


def test_sampling_settings_and_model_are_sent(chat_server, make_teacher):
    seeded = make_requests("q-seeded", sampling=Sampling(temperature=0.2, top_p=0.9, max_tokens=77, seed=5))
    unseeded = make_requests("q-unseeded", sampling=Sampling(seed=None))

    list(make_teacher(chat_server.url, model="qwen-72b", concurrency=1).complete(seeded + unseeded))

    first, second = chat_server.bodies()
    assert first == {
        "model": "qwen-72b",
        "messages": seeded[0].chat(),
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 77,
        "seed": 5,
    }
    assert "seed" not in second and second["max_tokens"] == 1024


def test_shipped_config_builds_the_teacher(chat_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cfg = OmegaConf.load(CONF_DIR / "teacher" / "openai.yaml")
    cfg.client.seed = 0  # the config interpolates ${seed} from conf/synthesize.yaml
    cfg.client.base_url = chat_server.url

    teacher = hydra.utils.instantiate(cfg.client)

    assert isinstance(teacher, OpenAITeacher) and (teacher.backend, teacher.model) == ("openai", "gpt-4o-mini")
    assert cfg.unit > teacher.concurrency and cfg.resend_unit is False
