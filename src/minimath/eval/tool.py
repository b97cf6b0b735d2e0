"""`protocol=tool`: tool-integrated solving in ToRA's format (JiuZhang3.0's tool-manipulation setting).

The model writes a solution; when it closes a ```python block, generation stops there, the program runs in the
sandbox (`minimath.sandbox`: its own process, no network, a read-only view, limits), and what it printed — or, when
it failed, the last line of its error — is appended as an ```output block; generation then resumes from the whole
text, up to `rounds` programs per item. The transcript (the model's text with the output blocks between) is scored
like any output: the stated answer after the last marker, or the last `\\boxed{}`. Our process only writes the
program to a file for the sandbox; it never imports or evaluates model output.

Each item records how many programs ran and how each ended (`ProgramCounts`); the summary adds them up and names
the sandbox layers that were active.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from minimath.eval.generation import GenerationConfig
from minimath.sandbox import SandboxLimits, SandboxResult, run_programs

FENCE = "\n```\n"  # a block's closing fence: generation stops after it
_CLOSED_PROGRAM = re.compile(r"```python[ \t]*\n(.*)\n```[ \t]*\n?\Z", re.DOTALL)

# (ids of the prompts, settings) -> continuations: `generation.generate` bound to a model and its tokenizer
GenerateFn = Callable[[Sequence[list[int]], GenerationConfig], list[str]]


@dataclass(frozen=True)
class ToolSettings:
    rounds: int = 4  # programs per item at most
    workers: int = 2  # programs run at once
    limits: SandboxLimits = SandboxLimits()

    @classmethod
    def from_config(cls, cfg) -> ToolSettings:
        """From conf/protocol/tool.yaml's `tool` block."""
        return cls(int(cfg["rounds"]), int(cfg["workers"]), SandboxLimits.from_config(cfg["sandbox"]))


@dataclass
class ProgramCounts:
    """How one item's programs ended: `failed` (an exception, a memory or other kill), `refused` (the failures the
    sandbox caused: a forbidden file, socket, process or module), `timed_out` (the wall-clock or CPU limit)."""

    programs: int = 0
    failed: int = 0
    refused: int = 0
    timed_out: int = 0
    context_full: bool = False  # the transcript filled the model's context: no further round

    def add(self, result: SandboxResult) -> None:
        self.programs += 1
        self.timed_out += result.status == "timeout"
        self.failed += result.status not in ("ok", "timeout")
        self.refused += result.status == "error" and "sandbox: " in last_line(result.stderr_tail)


@dataclass
class Transcript:
    text: str = ""
    counts: ProgramCounts = field(default_factory=ProgramCounts)
    layers: tuple[str, ...] = ()  # the sandbox's, when a program ran


def closed_program(segment: str) -> str | None:
    """The program of the ```python block a generated segment ends with (None: it ends otherwise)."""
    match = _CLOSED_PROGRAM.match(segment, max(0, segment.rfind("```python")))
    return match[1] if match and "```" not in match[1] else None


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def output_block(result: SandboxResult, limits: SandboxLimits) -> str:
    """What the model reads back: the program's output, or its error's last line."""
    if result.status == "timeout":
        shown = f"TimeoutError: the program ran past its {limits.wall_seconds:g} s limit"
    elif result.status == "memory":
        shown = "MemoryError"
    elif not result.ok:
        shown = last_line(result.stderr_tail) or f"the program ended with status {result.returncode}"
    else:
        shown = result.stdout.strip("\n")
    return f"```output\n{shown}\n```\n"


def solve_with_tool(
    generate_fn: GenerateFn,
    prompts: Sequence[list[int]],
    encode: Callable[[str], list[int]],
    cfg: GenerationConfig,
    settings: ToolSettings,
    room: int,
) -> list[Transcript]:
    """Solve every prompt with up to `settings.rounds` programs, the prompts of one round generated as a batch;
    `room`: the most prompt tokens a generation can start from (an item whose transcript outgrows it stops)."""
    transcripts = [Transcript() for _ in prompts]
    round_cfg = dataclasses.replace(cfg, stop_kept=(*cfg.stop_kept, FENCE))
    active = list(range(len(prompts)))
    for _ in range(settings.rounds + 1):
        if not active:
            break
        segments = generate_fn([list(prompts[i]) + encode(transcripts[i].text) for i in active], round_cfg)
        programs, writing_on = [], []
        for i, segment in zip(active, segments):
            transcripts[i].text += segment
            program = closed_program(segment)
            if program is None and segment.endswith(FENCE):  # another block closed (its own ```output): go on
                writing_on.append(i)
            elif program is not None and transcripts[i].counts.programs < settings.rounds:
                programs.append((i, program))
        results = run_programs([code for _, code in programs], settings.limits, settings.workers)
        for (i, _), result in zip(programs, results):
            transcript = transcripts[i]
            transcript.text += ("" if transcript.text.endswith("\n") else "\n") + output_block(result, settings.limits)
            transcript.counts.add(result)
            transcript.layers = result.layers
        active = []
        for i in sorted(writing_on + [i for i, _ in programs]):
            if len(prompts[i]) + len(encode(transcripts[i].text)) > room:
                transcripts[i].counts.context_full = True
            else:
                active.append(i)
    return transcripts


def tool_summary(records: list[dict], layers: tuple[str, ...]) -> dict:
    """The programs of a task's items added up, and the sandbox layers they ran under."""
    counts = [r["tool"] for r in records]
    total = {key: sum(c[key] for c in counts) for key in ("programs", "failed", "refused", "timed_out")}
    return {
        **total,
        "items_with_programs": sum(c["programs"] > 0 for c in counts),
        "context_full": sum(c["context_full"] for c in counts),
        "sandbox_layers": list(layers),
    }
