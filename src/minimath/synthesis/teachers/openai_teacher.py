"""The `openai` teacher: chat completions from any OpenAI-compatible endpoint through the official `openai` client —
OpenAI itself for JiuZhang3.0's teacher calls, or vLLM/SGLang servers behind one URL, which is how synthesis scales:
many servers, one client keeping `concurrency` requests in flight.

The client's own retries are off (`max_retries=0`) so that ours are the only ones and are counted: 429, 5xx,
timeouts, connection errors and malformed bodies are retried with full-jitter exponential backoff, or after the
server's `Retry-After` on 429/503. A refusal or a context-length 400 is the teacher's answer about that request,
not the endpoint failing: it is not retried and does not count against `failure_budget`. The budget counts requests
that finally failed *in a row*, so an endpoint that is down (refusing connections, timing out, 500 on everything)
stops the run after `failure_budget` requests, while a healthy endpoint's occasional lost request over a long run
does not; the requests it lost are failures the pipeline can ask for again.

The key is read from the environment variable named by `api_key_env` and goes nowhere but the client's
`Authorization` header: no attribute shown by `repr`, no log, no message.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import openai
from openai.types.chat import ChatCompletion

from minimath.errors import UserError
from minimath.synthesis.records import Completion, Request

NO_KEY = "EMPTY"  # what a local vLLM/SGLang server without --api-key accepts
ANSWERS = ("refusal", "context length")  # final outcomes about the request itself: no retry, not the endpoint's fault


@dataclasses.dataclass
class TeacherStats:
    """What the teacher cost and what came of it, over all its `complete` calls: HTTP calls sent (retries included)
    and retries; of the completions handed to the caller, the answers, the tokens billed and the failures by
    reason."""

    calls: int = 0
    retries: int = 0
    answered: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    failures: Counter = dataclasses.field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "calls": self.calls,
            "retries": self.retries,
            "answered": self.answered,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "failures": dict(sorted(self.failures.items())),
        }


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date (RFC 9110); None if absent or
    unreadable. A date in the past means now."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - now
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _is_context_length(err: openai.APIStatusError) -> bool:
    return err.code == "context_length_exceeded" or "context length" in str(err.message).lower()


def _tally(failures: Counter) -> str:
    return ", ".join(f"{reason} ×{n}" for reason, n in failures.most_common())


class _Retry(Exception):
    """An attempt failed in a way worth another try; `wait` is the server's Retry-After, if it gave one."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class OpenAITeacher:
    """A `Teacher` over an OpenAI-compatible `/chat/completions` endpoint (see the module docstring); settings come
    from conf/teacher/openai.yaml. `stats` (a `TeacherStats`) holds the counts for the pipeline's cost summary."""

    backend = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None,
        concurrency: int,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        timeout: float,
        failure_budget: int,
        seed: int,
    ):
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key.strip():
                raise UserError(
                    f"teacher.client.api_key_env: environment variable {api_key_env} is not set or "
                    f"empty: export it, or set teacher.client.api_key_env=null for a server without a key"
                )
        else:
            key = NO_KEY
        if int(concurrency) < 1 or int(failure_budget) < 1 or int(max_retries) < 0:
            raise UserError("teacher: concurrency and failure_budget must be at least 1, max_retries at least 0")
        self.base_url = str(base_url)
        self.model = str(model)
        self.api_key_env = api_key_env
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.timeout = float(timeout)
        self.failure_budget = int(failure_budget)
        self.stats = TeacherStats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._failed_in_row: Counter = Counter()  # across `complete` calls: the pipeline sends a unit per call
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"OpenAITeacher(base_url={self.base_url!r}, model={self.model!r}, concurrency={self.concurrency})"

    def complete(self, requests: Iterable[Request]) -> Iterator[Completion]:
        """One Completion per request, in the order they finish, with at most `concurrency` in flight. Raises
        `UserError` when `failure_budget` requests in a row have failed, after yielding what was answered."""
        stop = threading.Event()
        source = iter(requests)
        in_flight: set[Future] = set()
        spent: str | None = None  # the failures in a row that spent the budget
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai-teacher") as pool:
            try:
                while True:
                    while (
                        not stop.is_set()
                        and len(in_flight) < self.concurrency
                        and (request := next(source, None)) is not None
                    ):
                        in_flight.add(pool.submit(self._answer, request, stop))
                    if not in_flight:
                        break
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        completion = future.result()
                        if completion.ok or not stop.is_set():  # after the stop, only answers: the rest were cut short
                            self._count(completion)
                            yield completion
                    if spent is None and self._failed_in_row.total() >= self.failure_budget:
                        spent = f"{self._failed_in_row.total()} requests in a row ({_tally(self._failed_in_row)})"
                        stop.set()  # no new requests, no more retries; what is in flight comes back above
            finally:
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
        if spent is not None:
            raise UserError(
                f"teacher {self.base_url} failed {spent}: check the server; the {self.stats.answered} "
                f"answers so far are kept, rerun to continue"
            )

    def _answer(self, request: Request, stop: threading.Event) -> Completion:
        """Ask until answered, retries run out or the run stops; the last failure's reason otherwise."""
        start = time.monotonic()
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    self.stats.retries += 1
            try:
                completion = self._attempt(request)
            except _Retry as retry:
                reason = retry.reason
                if attempt == self.max_retries or stop.wait(self._backoff(attempt, retry.wait)):
                    break
                continue
            return dataclasses.replace(completion, seconds=time.monotonic() - start)
        return Completion(request, failure=reason, seconds=time.monotonic() - start)

    def _attempt(self, request: Request) -> Completion:
        """One HTTP call: a Completion (an answer, a refusal, a context-length skip or a request the server rejects)
        or `_Retry`."""
        sampling = request.sampling
        optional = {"seed": sampling.seed} if sampling.seed is not None else {}
        with self._lock:
            self.stats.calls += 1
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=request.chat(),
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                **optional,
            )
        except openai.APITimeoutError:
            raise _Retry("timeout") from None
        except openai.APIConnectionError:
            raise _Retry("connection") from None
        except openai.APIStatusError as err:
            return self._status_error(err, request)
        except json.JSONDecodeError:
            raise _Retry("malformed response") from None
        return self._read(response, request)

    def _status_error(self, err: openai.APIStatusError, request: Request) -> Completion:
        status = err.status_code
        if status in (401, 403):
            if self.api_key_env:
                raise UserError(
                    f"teacher {self.base_url} rejected the key in ${self.api_key_env} (http {status}): check that key"
                )
            raise UserError(
                f"teacher {self.base_url} wants a key (http {status}): set teacher.client.api_key_env to "
                f"the environment variable that holds it"
            )
        if status == 404:
            raise UserError(
                f"teacher {self.base_url} answered http 404 for model {self.model}: "
                f"check teacher.client.base_url (it ends in /v1) and teacher.client.model"
            )
        if status == 429 or status >= 500:
            wait_s = (
                retry_after_seconds(err.response.headers.get("retry-after"), time.time())
                if status in (429, 503)
                else None
            )
            raise _Retry(f"http {status}", wait_s)
        if status == 400 and _is_context_length(err):
            return Completion(request, failure="context length")
        return Completion(request, failure=f"http {status}")

    def _read(self, response: object, request: Request) -> Completion:
        """Choice 0 of a chat.completion, a refusal, or `_Retry` for a body that is not one."""
        choices = getattr(response, "choices", None) if isinstance(response, ChatCompletion) else None
        if not choices or getattr(choices[0], "message", None) is None:
            raise _Retry("malformed response")
        choice = choices[0]
        usage = response.usage
        tokens = {"tokens_in": usage.prompt_tokens or 0, "tokens_out": usage.completion_tokens or 0} if usage else {}
        finish_reason = choice.finish_reason or ""
        if choice.message.refusal or finish_reason == "content_filter":
            return Completion(request, finish_reason=finish_reason, failure="refusal", **tokens)
        if not isinstance(choice.message.content, str):
            raise _Retry("malformed response")
        return Completion(request, text=choice.message.content, finish_reason=finish_reason, **tokens)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry `attempt + 1`: the server's Retry-After when it sent one, else full jitter
        (uniform in [0, min(backoff_max, backoff_base · 2^attempt)])."""
        if retry_after is not None:
            return retry_after
        with self._lock:
            return self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2**attempt))

    def _count(self, completion: Completion) -> None:
        """Tally a completion handed to the caller; a failure of the endpoint extends the run of failures in a row,
        anything else (an answer, a refusal, a context-length skip) ends it."""
        self.stats.tokens_in += completion.tokens_in
        self.stats.tokens_out += completion.tokens_out
        if completion.ok:
            self.stats.answered += 1
        else:
            self.stats.failures[completion.failure] += 1
        if completion.ok or completion.failure in ANSWERS:
            self._failed_in_row.clear()
        else:
            self._failed_in_row[completion.failure] += 1
