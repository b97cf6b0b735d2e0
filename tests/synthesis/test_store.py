"""The answer cache: keyed by the full request, append-only, a torn last line cut off and asked again."""

from __future__ import annotations

import pytest

from minimath.synthesis.records import Completion, Request, Sampling
from minimath.synthesis.store import AnswerCache


def request(i: int, **sampling) -> Request:
    return Request("grade_school_en", f"text#{i}", f"{i:016x}", (("user", f"text {i}"),), Sampling(**sampling))


def test_the_cache_key_covers_backend_model_prompt_sampling_and_sample_index():
    base = request(1).cache_key("openai", "m")
    assert base == request(1).cache_key("openai", "m")
    variants = [
        request(1).cache_key("vllm", "m"),
        request(1).cache_key("openai", "m2"),
        request(2).cache_key("openai", "m"),
        request(1, temperature=0.2).cache_key("openai", "m"),
        Request("grade_school_en", "text#1", f"{1:016x}", (("user", "text 1"),), Sampling(), sample_index=1).cache_key(
            "openai", "m"
        ),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def test_answers_survive_reopening_and_a_torn_last_line_is_cut(tmp_path):
    with AnswerCache(tmp_path, flush_every=1) as cache:
        for i in range(3):
            cache.put(f"k{i}", Completion(request(i), text=f"answer {i}", tokens_in=5, tokens_out=2))
    path = next(tmp_path.glob("answers-*.jsonl"))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"key": "k3", "text": "half an ans')  # a SIGKILL while writing the fourth
    reopened = AnswerCache(tmp_path)
    assert len(reopened) == 3 and reopened.get("k2")["text"] == "answer 2" and "k3" not in reopened
    assert reopened.torn and path.read_bytes() == whole


def test_failures_are_never_cached(tmp_path):
    with AnswerCache(tmp_path) as cache:
        with pytest.raises(AssertionError):
            cache.put("k", Completion(request(0), failure="http 500"))
    assert len(AnswerCache(tmp_path)) == 0


def test_two_writers_on_one_cache_write_separate_files(tmp_path):
    a, b = AnswerCache(tmp_path, flush_every=1), AnswerCache(tmp_path, flush_every=1)
    a.put("ka", Completion(request(0), text="from a"))
    b.put("kb", Completion(request(1), text="from b"))
    a.close(), b.close()
    assert len(list(tmp_path.glob("answers-*.jsonl"))) == 2
    merged = AnswerCache(tmp_path)
    assert merged.get("ka")["text"] == "from a" and merged.get("kb")["text"] == "from b"
