"""What flows through data synthesis (JiuZhang3.0's pipeline): a request to a teacher, the teacher's answer or the
reason it failed, and the parsed (problem, solution, answer) a verified example is made of.

Every backend (`minimath.synthesis.teachers`) takes `Request`s and yields one `Completion` per request — a text
or a failure reason — so the pipeline, its cache and its manifest never depend on which backend answered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol


def text_hash(text: str) -> str:
    """The seed text's identity in manifests and caches (sha256 of its UTF-8 bytes, 16 hex digits)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Sampling:
    """Sampling settings sent with every request; part of the cache key."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Request:
    """One call to a teacher: chat messages rendered from a prompt and a seed text.

    `sample_index` tells apart several samples of the same prompt (n > 1); `seed_id` names the seed text
    (source name and position), `text_hash` its content."""

    prompt_id: str
    seed_id: str
    text_hash: str
    messages: tuple[tuple[str, str], ...]  # ((role, content), ...)
    sampling: Sampling = field(default_factory=Sampling)
    sample_index: int = 0

    def chat(self) -> list[dict]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def prompt_text(self) -> str:
        """The messages as one string (what a completion-style backend feeds the model)."""
        return "\n\n".join(content for _, content in self.messages)

    def cache_key(self, backend: str, model: str) -> str:
        """Identity of the answer: (backend, model, prompt text, sampling settings, sample index). A rerun that
        asks for the same key never calls the teacher again."""
        payload = json.dumps(
            {
                "backend": backend,
                "model": model,
                "messages": self.messages,
                "sampling": self.sampling.to_dict(),
                "sample": self.sample_index,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Completion:
    """A teacher's answer to one request. `failure` is None on success, else a short reason
    (`http 429`, `timeout`, `malformed response`, `refusal`, `context length`, ...) and `text` is empty."""

    request: Request
    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    finish_reason: str = ""
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class Teacher(Protocol):
    """A synthesis backend. `backend` and `model` name it in caches and manifests (`oracle` backends say that they
    are programmatic stand-ins); `complete` yields exactly one Completion per request, in any order."""

    backend: str
    model: str

    def complete(self, requests: Iterable[Request]) -> Iterator[Completion]: ...


@dataclass(frozen=True)
class Example:
    """A parsed synthesized example: a self-contained problem, its step-by-step solution and the final answer
    (as written after the prompt's answer marker). `tool`: the solution is a Python program plus its claimed
    printed output (`program`, `claimed_output`)."""

    problem: str
    solution: str
    answer: str
    prompt_id: str = ""
    seed_id: str = ""
    text_hash: str = ""
    program: str | None = None
    claimed_output: str | None = None

    def training_pair(self) -> dict:
        """JiuZhang3.0's released format: `{"input": "## Question\\n…\\n## Solution\\n", "output": …}`."""
        return {"input": f"## Question\n{self.problem.strip()}\n## Solution\n", "output": self.solution.strip()}
