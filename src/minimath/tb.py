"""Reading TensorBoard scalars back (experiment reports, tests)."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader


def read_all_scalars(tb_dir: str | Path) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} over every event file in `tb_dir`, steps in order, the last value written for each step
    (a resumed run writes a new file and re-logs the steps after its checkpoint; the later value wins)."""
    values: dict[str, dict[int, tuple[float, float]]] = {}
    for path in sorted(Path(tb_dir).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = value.simple_value
                elif kind == "tensor" and len(value.tensor.float_val) == 1:
                    number = value.tensor.float_val[0]
                else:
                    continue  # not a scalar (hparams plugin data, text, images)
                steps = values.setdefault(value.tag, {})
                if event.step not in steps or event.wall_time >= steps[event.step][0]:
                    steps[event.step] = (event.wall_time, number)
    return {tag: {step: v for step, (_, v) in sorted(steps.items())} for tag, steps in values.items()}


def read_scalars(tb_dir: str | Path, tag: str) -> dict[int, float]:
    """The last value written for each step of `tag` (`read_all_scalars`)."""
    return read_all_scalars(tb_dir).get(tag, {})
