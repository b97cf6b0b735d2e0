"""A local OpenAI-compatible chat-completions server that misbehaves on cue: the test double behind the `openai`
teacher's tests and its benchmark (`python -m minimath.bench.teacher`). Not a server to synthesize with.

It lives in the package rather than under tests/ because the benchmark, which runs outside pytest, starts it too.
It answers `POST /v1/chat/completions` with a well-formed `chat.completion` whose text is a deterministic function
of the messages, waits `latency` seconds per request (a teacher's generation time), and injects scripted faults for
requests whose last message contains a given string: 401, 429 or 503 with `Retry-After`, 500, a stall longer than the
client's timeout, a non-JSON body, a body without choices, a refusal, a content-filter stop, a context-length 400.
Every request is recorded (method, path, headers, body), and the peak number of requests in flight is kept, so tests can
check exactly-once answering, the concurrency limit and where the API key travelled.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("401", "429", "503", "500", "stall", "malformed", "no choices", "refusal", "content filter", "context length")


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour. `retry_after` is the `Retry-After` header sent with a 429 or 503 (seconds or an
    HTTP date; None: no header)."""

    kind: str
    retry_after: str | None = None

    def __post_init__(self):
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(FAULTS)}")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None


def echo_hash(messages: list[dict]) -> str:
    """The default answer: names a hash of the messages, so a test can tell which request an answer belongs to."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"answer {digest[:16]}"


def _words(text: str) -> int:
    return len(text.split())


class ChatServer:
    """`with ChatServer(latency=0.1) as server:` serves on 127.0.0.1 at `server.url` (…/v1) from a background
    thread. `server.script("needle", "429", "500")` makes the next two requests whose last message contains
    "needle" fail that way, in that order (`forever=True`: every such request, in turn)."""

    def __init__(
        self,
        responder: Callable[[list[dict]], str] = echo_hash,
        latency: float = 0.0,
        stall_seconds: float = 5.0,
        model: str = "test-teacher",
    ):
        self.responder = responder
        self.latency = latency
        self.stall_seconds = stall_seconds
        self.model = model
        self.received: list[Received] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._scripts: list[tuple[str, deque[Fault], bool]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, needle: str, *faults: str | Fault, forever: bool = False) -> None:
        queue = deque(f if isinstance(f, Fault) else Fault(f) for f in faults)
        with self._lock:
            self._scripts.append((needle, queue, forever))

    def bodies(self) -> list[dict]:
        """The JSON bodies of the chat-completion requests received, in arrival order."""
        with self._lock:
            return [r.body for r in self.received if r.body is not None]

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()  # wakes stalled and sleeping handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _next_fault(self, body: dict) -> Fault | None:
        messages = body.get("messages") or [{}]
        last = str(messages[-1].get("content", ""))
        with self._lock:
            for needle, queue, forever in self._scripts:
                if needle in last and queue:
                    fault = queue.popleft()
                    if forever:
                        queue.append(fault)
                    return fault
        return None

    def _enter(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def respond(self, body: dict | None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body bytes) for one request body; waits out the latency or a stall first."""
        if body is None:
            return _error(400, "request body is not JSON", "invalid_request_error")
        fault = self._next_fault(body)
        self._closing.wait(self.stall_seconds if fault and fault.kind == "stall" else self.latency)
        if fault is None or fault.kind == "stall":
            return self._completion(body, self.responder(body["messages"]), "stop")
        if fault.kind in ("429", "503", "500"):
            status, headers, payload = _error(int(fault.kind), f"injected {fault.kind}", "server_error")
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            return status, headers, payload
        if fault.kind == "401":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")
        if fault.kind == "malformed":
            return 200, {"Content-Type": "application/json"}, b"<html>502 Bad Gateway</html>"
        if fault.kind == "no choices":
            return 200, {"Content-Type": "application/json"}, b'{"id": "x", "object": "chat.completion"}'
        if fault.kind == "refusal":
            return self._completion(body, None, "stop", refusal="I can't help with that.")
        if fault.kind == "content filter":
            return self._completion(body, "", "content_filter")
        return _error(
            400,
            "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.",
            "invalid_request_error",
            code="context_length_exceeded",
        )

    def _completion(
        self, body: dict, text: str | None, finish_reason: str, refusal: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        prompt_tokens = sum(_words(str(m.get("content", ""))) for m in body["messages"])
        completion_tokens = _words(text or refusal or "")
        payload = {
            "id": f"chatcmpl-{len(self.received)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "logprobs": None,
                    "message": {"role": "assistant", "content": text, "refusal": refusal},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode("utf-8")


def _error(status: int, message: str, kind: str, code: str | None = None) -> tuple[int, dict[str, str], bytes]:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops the SYNs of a client opening many connections at once


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
        disable_nagle_algorithm = True  # else the body, written after the headers, waits ~40 ms for a delayed ACK

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            server._enter(Received("POST", self.path, dict(self.headers.items()), body))
            try:
                if self.path.rstrip("/") == "/v1/chat/completions":
                    status, headers, payload = server.respond(body)
                else:
                    status, headers, payload = _error(404, f"no route {self.path}", "not_found")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a stall past its timeout)
            finally:
                server._leave()

        def log_message(self, format, *args):
            pass  # a test's output stays the test's

    return Handler
