"""Fixtures for the synthesis tests: the fault-injecting local chat-completions server and fast teachers on it."""

from __future__ import annotations

import pytest

from minimath.synthesis.testing_server import ChatServer

# Retries, timeouts and backoff short enough that a test with faults takes a fraction of a second.
FAST = {"model": "test-teacher", "api_key_env": None, "concurrency": 4, "max_retries": 3, "backoff_base": 0.001,
        "backoff_max": 0.01, "timeout": 0.3, "failure_budget": 5, "seed": 0}


@pytest.fixture
def chat_server():
    """A started `ChatServer` (stalls last 2 s, past the fast teachers' 0.3 s timeout)."""
    with ChatServer(stall_seconds=2.0) as server:
        yield server


@pytest.fixture
def make_teacher():
    """`make_teacher(base_url, **settings)`: an OpenAITeacher with FAST settings, overridden by `settings`."""
    from minimath.synthesis.teachers.openai_teacher import OpenAITeacher

    return lambda base_url, **settings: OpenAITeacher(base_url=base_url, **{**FAST, **settings})
