"""Verification of synthesized examples before they become training data (JiuZhang3.0 keeps only what survives).

A teacher's text is not trusted: each `Example` passes, in a fixed order, cheap filters first and the sandboxed one
last, so a program is only run for an example that every other filter kept:

1. `length`        problem and solution within configured character bounds;
2. `arithmetic`    every `a op b = c` step the solution writes is recomputed exactly with the project's expression
                   parser (never `eval`); a wrong step drops the example, and the final answer must equal the last
                   checked step. An `=` that is not pure arithmetic on both sides (`x = 5`, `3:4 = 6:8`, `2x = 10`)
                   is counted as unchecked, never as wrong;
3. `decontaminate` a 13-gram shared with any configured evaluation set (problem or solution): the same
                   `decontaminate:` block as a data config's (`minimath.data.eval_sets`: benchmark tasks from the
                   registry, or files listed by hand), a missing benchmark file a counted, reported skip;
4. `tool`          a program is run in `minimath.sandbox` and its stdout must match the claimed output (whitespace
                   ignored, numbers equal at the precision the coarser side prints);
5. `near_dedup`    MinHash near-duplicates of an earlier kept problem.

Every drop is counted by reason with its first offender (`FilterReport.to_dict()` goes into the manifest).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from omegaconf import DictConfig, OmegaConf

from minimath.data.clean import NearDuplicateIndex
from minimath.data.eval_sets import build_decontaminator, resolve_eval_sets, skip_lines
from minimath.data.synth.expression import ExpressionError, numeric_value
from minimath.eval.answers import extract_answer, numeric_answer
from minimath.numbers import agrees_with_answer, normalize_math_text
from minimath.sandbox import SandboxLimits, run_programs
from minimath.synthesis.records import Example

FILTERS = ("length", "arithmetic", "decontaminate", "tool", "near_dedup")

# After normalize_math_text: numbers, operators, brackets and spaces — what an arithmetic side is written with.
_SIDE_CHARS = set("0123456789.+-*/×÷^()% \t")
_OPERATOR = re.compile(r"(?<=[\d)%\s])[-+*/×÷^]")
# A word that makes the number after it an operand of what came before (`25% of 80 = 20`, `3 times 4 + 1 = 13`).
_OPERATOR_WORDS = {"of", "times", "by", "plus", "minus", "per", "over", "than"}
_TOKEN = re.compile(r"-?\d+(?:\.\d+)?|\S")


@dataclass
class FilterReport:
    """Examples read and kept, drops by reason with the first offender, arithmetic steps checked / unchecked."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    first_offender: dict[str, str] = field(default_factory=dict)
    steps_checked: int = 0
    steps_unchecked: int = 0
    sandbox_layers: tuple[str, ...] = ()
    decontamination: dict = field(default_factory=dict)  # {sets: {name: path}, skipped: {name: missing path}}

    def drop(self, reason: str, where: str, detail: str) -> None:
        self.dropped[reason] += 1
        self.first_offender.setdefault(reason, f"{where}: {detail}")

    def summary(self) -> str:
        parts = [f"verify: read {self.read}, kept {self.kept}"]
        parts += [
            f"dropped {n} ({reason}; first: {self.first_offender[reason]})"
            for reason, n in sorted(self.dropped.items())
        ]
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "read": self.read,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "first_offender": dict(self.first_offender),
            "steps_checked": self.steps_checked,
            "steps_unchecked": self.steps_unchecked,
            "sandbox_layers": list(self.sandbox_layers),
            "decontamination": dict(self.decontamination),
        }


@dataclass(frozen=True)
class Step:
    """One `left = right` in a solution line (normalized text); `value` is None when it is not pure arithmetic."""

    left: str
    right: str
    value: Fraction | None

    @property
    def correct(self) -> bool:
        return self.value is not None and _equals(self.value, self.right)


def _left_side(part: str) -> str | None:
    """The arithmetic written just before an `=`: the trailing run of expression characters, when it is a computation
    standing on its own (it has an operator — `1 km = 1000 m` is not a step —, starts the line or follows a space
    that does not follow an operator word, and begins with a number, a bracket or a leading minus)."""
    i = len(part)
    while i > 0 and part[i - 1] in _SIDE_CHARS:
        i -= 1
    if part[i : i + 1] == "." and part[i + 1 : i + 2].isspace():  # a sentence's full stop, not a decimal point
        i += 1
    run = part[i:]
    text = run.strip()
    if not text or (i > 0 and not run[0].isspace()):
        return None
    before = part[:i].rstrip()
    if text[0] in "+*/×÷^%)" or (text[0] == "-" and before and (before[-1].isalnum() or before[-1] == ")")):
        return None  # the tail of a longer expression (x + 3, 2(x - 1))
    if not _OPERATOR.search(text) or before.split()[-1:] and before.split()[-1].lower() in _OPERATOR_WORDS:
        return None
    return text


def _right_side(part: str) -> str | None:
    """The arithmetic written just after an `=`: the leading run of expression characters, when it ends the line,
    a space or a sentence (not `= 5cm`, `= 6:8`)."""
    i = 0
    while i < len(part) and part[i] in _SIDE_CHARS:
        i += 1
    run, rest = part[:i], part[i:]
    text = run.strip()
    if text.endswith(".") and (not rest or rest[0].isspace()):
        text, rest = text[:-1].rstrip(), rest
    elif rest and not run[-1:].isspace() and rest[0] not in ",;!?。，；":
        return None
    if not text or text[-1] in "+-*/×÷^(":
        return None
    return text


def _value(text: str | None) -> Fraction | None:
    if text is None or not re.search(r"\d", text):
        return None
    try:
        return numeric_value(text)
    except (ExpressionError, ZeroDivisionError, OverflowError):
        return None


def _equals(value: Fraction, written: str) -> bool:
    """`written` states `value`: exactly, as a decimal rounded to its own places (10 ÷ 3 = 3.33), or as a percent
    of it (0.2 × 100 = 20%)."""
    shown = _value(written)
    if shown is None:
        return False
    return value == shown or agrees_with_answer(value, written) or (written.endswith("%") and value == shown * 100)


def arithmetic_steps(solution: str) -> list[Step]:
    """Every `=` in the solution, in order, as a step; chains (`3 × 4 + 2 = 12 + 2 = 14`) give one step per `=`."""
    steps = []
    for line in normalize_math_text(solution).splitlines():
        parts = line.split("=")
        for left_part, right_part in zip(parts, parts[1:]):
            left, right = _left_side(left_part), _right_side(right_part)
            value = _value(left) if right is not None and _value(right) is not None else None
            steps.append(Step(left or left_part.strip(), right or right_part.strip(), value))
    return steps


def arithmetic_problem(example: Example, steps: Sequence[Step], check_answer: bool) -> str | None:
    """Why the solution's arithmetic fails (a wrong step, or a final answer that is not the last step's value)."""
    checked = [s for s in steps if s.value is not None]
    for step in checked:
        if not step.correct:
            return f"arithmetic step wrong: {step.left} = {step.right}"
    if not check_answer or not checked:
        return None
    answer = numeric_answer(example.answer) if example.answer.strip() else extract_answer(example.solution)
    if _value(answer) is None:
        return None  # a non-numeric answer (an expression in x, a choice) is not compared
    if not _equals(checked[-1].value, answer):
        return f"final answer {answer} is not the last step's value {checked[-1].right}"
    return None


def _decimals(token: str) -> int:
    return len(token.split(".")[1]) if "." in token else 0


def outputs_match(actual: str, claimed: str) -> bool:
    """The same tokens, whitespace ignored; numbers equal within half a unit of the coarser printed decimal place
    (3.3333333333333335 matches a claimed 3.33; 3 does not match 3.4)."""
    a, c = _TOKEN.findall(actual), _TOKEN.findall(claimed)
    if len(a) != len(c):
        return False
    for x, y in zip(a, c):
        if x == y:
            continue
        if not (x[-1].isdigit() and y[-1].isdigit()):
            return False
        places = [d for d in (_decimals(x), _decimals(y)) if d > 0]
        tolerance = Fraction(1, 2 * 10 ** min(places)) if places else Fraction(0)
        if abs(Fraction(x) - Fraction(y)) > tolerance:
            return False
    return True


def _where(example: Example, index: int) -> str:
    return example.seed_id or f"example {index}"


def verify_examples(
    examples: Sequence[Example], cfg: DictConfig | dict, log=print
) -> tuple[list[Example], FilterReport]:
    """The examples every enabled filter keeps (in input order) and the report of what was dropped and why
    (`log`: the evaluation sets decontamination reads and skips)."""
    cfg = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    report = FilterReport(read=len(examples))
    alive = list(enumerate(examples))

    if cfg.length.enabled:
        alive = [(i, ex) for i, ex in alive if _length_ok(ex, i, cfg.length, report)]
    if cfg.arithmetic.enabled:
        alive = [(i, ex) for i, ex in alive if _arithmetic_ok(ex, i, cfg.arithmetic, report)]
    if cfg.decontaminate.enabled:
        alive = _decontaminate(alive, cfg.decontaminate, report, log)
    if cfg.tool.enabled:
        alive = _tool_filter(alive, cfg.tool, report)
    if cfg.near_dedup.enabled:
        params = {k: v for k, v in OmegaConf.to_container(cfg.near_dedup, resolve=True).items() if k != "enabled"}
        index = NearDuplicateIndex(**params)
        kept = []
        for i, ex in alive:
            if index.add_if_new(ex.problem):
                kept.append((i, ex))
            else:
                report.drop("near duplicate", _where(ex, i), ex.problem[:80])
        alive = kept

    report.kept = len(alive)
    return [ex for _, ex in alive], report


def _decontaminate(
    alive: list[tuple[int, Example]], cfg: DictConfig, report: FilterReport, log
) -> list[tuple[int, Example]]:
    """Drop the examples whose problem or solution shares an n-gram with a protected set (counted per set)."""
    eval_sets = resolve_eval_sets(cfg)
    for line in skip_lines(eval_sets.skipped):
        log(line)
    report.decontamination = {"sets": {s.name: s.path for s in eval_sets.present}, "skipped": eval_sets.skipped}
    decon = build_decontaminator(eval_sets, int(cfg.n), log)
    kept = []
    for i, ex in alive:
        hits = tuple(dict.fromkeys(decon.contaminated_by(ex.problem) + decon.contaminated_by(ex.solution)))
        if hits:
            report.drop(f"contaminated ({', '.join(hits)})", _where(ex, i), ex.problem[:80])
        else:
            kept.append((i, ex))
    return kept


def _length_ok(example: Example, index: int, cfg: DictConfig, report: FilterReport) -> bool:
    for name, text in (("problem", example.problem), ("solution", example.solution)):
        size = len(text.strip())
        if size < cfg[f"{name}_min_chars"]:
            report.drop(f"{name} too short", _where(example, index), f"{size} characters")
            return False
        if size > cfg[f"{name}_max_chars"]:
            report.drop(f"{name} too long", _where(example, index), f"{size} characters")
            return False
    return True


def _arithmetic_ok(example: Example, index: int, cfg: DictConfig, report: FilterReport) -> bool:
    steps = arithmetic_steps(example.solution)
    report.steps_checked += sum(s.value is not None for s in steps)
    report.steps_unchecked += sum(s.value is None for s in steps)
    problem = arithmetic_problem(example, steps, bool(cfg.final_answer))
    if problem is None:
        return True
    reason = "arithmetic step wrong" if problem.startswith("arithmetic step wrong") else "final answer mismatch"
    report.drop(reason, _where(example, index), problem)
    return False


def _tool_filter(alive: list[tuple[int, Example]], cfg: DictConfig, report: FilterReport) -> list[tuple[int, Example]]:
    """Run every program (a bounded pool of sandboxed processes); keep those whose output is the claimed one."""
    with_program = [(i, ex) for i, ex in alive if ex.program is not None]
    results = run_programs(
        [ex.program for _, ex in with_program], SandboxLimits.from_config(cfg), workers=int(cfg.workers)
    )
    outcome = {i: result for (i, _), result in zip(with_program, results)}
    if results:
        report.sandbox_layers = results[0].layers
    kept = []
    for i, ex in alive:
        result = outcome.get(i)
        if result is None:
            kept.append((i, ex))
        elif not result.ok:
            tail = result.stderr_tail.strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
            report.drop(f"tool {result.status}", _where(ex, i), tail[0][:200])
        elif ex.claimed_output is None or not outputs_match(result.stdout, ex.claimed_output):
            report.drop(
                "tool output mismatch",
                _where(ex, i),
                f"printed {result.stdout.strip()[:80]!r}, claimed {(ex.claimed_output or '').strip()[:80]!r}",
            )
        else:
            kept.append((i, ex))
    return kept
