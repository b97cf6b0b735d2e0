"""Reading TensorBoard scalars back (experiment reports, tests)."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader


def read_scalars(tb_dir: str | Path, tag: str) -> dict[int, float]:
    """The last value written for each step of `tag` over every event file in `tb_dir` (a resumed run writes
    a new file and re-logs the steps after its checkpoint; the later value wins)."""
    values: dict[int, tuple[float, float]] = {}
    for path in sorted(Path(tb_dir).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == tag:
                    number = value.tensor.float_val[0] if value.HasField("tensor") else value.simple_value
                    if event.step not in values or event.wall_time >= values[event.step][0]:
                        values[event.step] = (event.wall_time, number)
    return {step: v for step, (_, v) in sorted(values.items())}
