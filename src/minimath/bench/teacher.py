"""Teacher-client benchmark: does the `openai` teacher keep `concurrency` requests in flight?

    python -m minimath.bench.teacher [--latency 0.1] [--concurrency 1 8 32] [--requests N]

A local chat-completions server (minimath.synthesis.testing_server) answers every request after `latency` seconds,
as a teacher generating would; with c requests in flight the ideal is c / latency requests/s, and the ratio to it
is what the client's own overhead (threads, the openai client, HTTP) leaves of that (target ≥ 0.8). By default each
of the c slots sends 20 requests, so a last partial round does not count against the client (200 requests at c=32
can reach at most 0.625 s / 0.7 s = 0.89 of the ideal). The server runs in its own process so that its work does
not share the client's interpreter lock.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

from minimath.synthesis.records import Request, Sampling, text_hash
from minimath.synthesis.teachers.openai_teacher import OpenAITeacher
from minimath.synthesis.testing_server import ChatServer


def serve(latency: float, urls, stop) -> None:
    with ChatServer(latency=latency) as server:
        urls.put(server.url)
        stop.wait()


def bench_requests(n: int, tag: str) -> list[Request]:
    return [
        Request(
            prompt_id="bench",
            seed_id=f"{tag}-{i}",
            text_hash=text_hash(f"{tag}-{i}"),
            messages=(("user", f"Problem {tag}-{i}: what is {i} + {i}?"),),
            sampling=Sampling(max_tokens=64),
        )
        for i in range(n)
    ]


def throughput(url: str, concurrency: int, requests: int) -> tuple[int, float]:
    """(answered, seconds) for `requests` requests at `concurrency`, after one untimed round opens the connections."""
    teacher = OpenAITeacher(
        base_url=url,
        model="bench",
        api_key_env=None,
        concurrency=concurrency,
        max_retries=0,
        backoff_base=0.1,
        backoff_max=1.0,
        timeout=30.0,
        failure_budget=1,
        seed=0,
    )
    list(teacher.complete(bench_requests(concurrency, f"warmup{concurrency}")))
    start = time.perf_counter()
    answered = sum(c.ok for c in teacher.complete(bench_requests(requests, f"c{concurrency}")))
    return answered, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server takes per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--requests", type=int, default=None, help="timed requests per concurrency (default: 20 per request in flight)"
    )
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(args.latency, urls, stop), daemon=True)
    server.start()
    try:
        url = urls.get(timeout=60)
        print(f"server latency {args.latency:g} s per request")
        print(f"{'concurrency':>11} {'answered':>8} {'seconds':>8} {'req/s':>8} {'ideal':>8} {'ratio':>6}")
        for concurrency in args.concurrency:
            answered, seconds = throughput(url, concurrency, args.requests or 20 * concurrency)
            rate, ideal = answered / seconds, concurrency / args.latency
            print(f"{concurrency:>11} {answered:>8} {seconds:>8.2f} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>6.2f}")
    finally:
        stop.set()
        server.join()


if __name__ == "__main__":
    main()
