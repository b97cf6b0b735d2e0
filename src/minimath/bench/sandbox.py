"""Sandbox benchmark: milliseconds per program and programs/s with N workers, for each set of layers this machine
allows (the read-only view, namespaces only, the audit hook only).

    python -m minimath.bench.sandbox [--programs 40] [--workers 1 2 4] [--code "print(sum(range(10)))"]

A warm-up program per setting is not timed (the view's probe runs once per process).
"""

from __future__ import annotations

import argparse
import time

from minimath.sandbox import SandboxLimits, run_program, run_programs

SETTINGS = {
    "readonly_view": SandboxLimits(),
    "namespaces": SandboxLimits(filesystem=False),
    "audit_hook": SandboxLimits(namespaces=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--code", default="print(sum(range(10)))")
    args = parser.parse_args()
    print("| layers | active | ms/program (1 worker) | " + " | ".join(f"programs/s, {w} workers" for w in args.workers))
    print("|---|---|---|" + "---|" * len(args.workers))
    for name, limits in SETTINGS.items():
        layers = run_program(args.code, limits).layers
        rates = []
        for workers in args.workers:
            start = time.perf_counter()
            results = run_programs([args.code] * args.programs, limits, workers=workers)
            seconds = time.perf_counter() - start
            assert all(r.ok for r in results), results[0]
            rates.append((seconds, args.programs / seconds))
        active = "readonly_view" in layers if name == "readonly_view" else "net_ns" in layers or name == "audit_hook"
        per_program = 1000 * rates[0][0] / args.programs if args.workers[0] == 1 else float("nan")
        cells = " | ".join(f"{rate:.1f}" for _, rate in rates)
        print(f"| {name} | {'yes' if active else 'no'} | {per_program:.0f} | {cells}")


if __name__ == "__main__":
    main()
