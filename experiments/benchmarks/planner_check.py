"""The memory planner against real steps on this CPU: at the two small sizes tests/test_planner.py checks
(`minimath.planner.CHECK_SHAPES`), with and without activation checkpointing, the live tensor memory measured over two
optimizer steps of two accumulated micro-batches (`minimath.planner.measured_peak`: every storage, exactly) beside the
planner's predicted peak (`step_memory`). fp32 is the issue's acceptance (within 15%); bf16-mixed (CPU autocast)
checks the coefficients the GPU plans use.

    python experiments/benchmarks/planner_check.py
"""

from __future__ import annotations

from dataclasses import replace

from minimath.hardware import machine_facts
from minimath.planner import CHECK_SHAPES, measured_peak, step_memory

MIB = 2**20


def main() -> None:
    facts = machine_facts()
    print(f"{facts['cpu']}, torch {facts['torch']}, {facts['threads']} threads")
    print("| size | precision | activation checkpointing | measured peak | predicted | predicted / measured |")
    print("|---|---|---|---|---|---|")
    for name, shape in CHECK_SHAPES.items():
        for precision in ("32-true", "bf16-mixed"):
            for checkpointing in (False, True):
                at = replace(shape, precision=precision)
                measured, predicted = measured_peak(at, checkpointing), step_memory(at, checkpointing).peak
                print(
                    f"| {name} | {precision} | {'on' if checkpointing else 'off'} | {measured / MIB:.2f} MiB | "
                    f"{predicted / MIB:.2f} MiB | {predicted / measured:.4f} |"
                )


if __name__ == "__main__":
    main()
