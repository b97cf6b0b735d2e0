"""The verification filters of data synthesis: what each keeps, drops and counts, in a fixed order."""

import json

import pytest

from minimath.synthesis.records import Example
from minimath.synthesis.verify import FILTERS, arithmetic_steps, outputs_match, verify_examples

from conftest import copy_of, write_benchmark_files

EVAL_QUESTION = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)


def config(*enabled, eval_path=None, **overrides):
    cfg = {
        "length": {
            "problem_min_chars": 10,
            "problem_max_chars": 500,
            "solution_min_chars": 5,
            "solution_max_chars": 2000,
        },
        "arithmetic": {"final_answer": True},
        "decontaminate": {
            "n": 13,
            "eval_sets": []
            if eval_path is None
            else [{"name": "gsm8k_test", "path": str(eval_path), "fields": ["question"]}],
        },
        "tool": {
            "workers": 2,
            "wall_seconds": 1.5,
            "cpu_seconds": 1,
            "memory_mb": 512,
            "output_bytes": 4096,
            "packages": [],
        },
        "near_dedup": {"threshold": 0.8},
    }
    for name in FILTERS:
        cfg[name]["enabled"] = name in enabled
    for name, values in overrides.items():
        cfg[name].update(values)
    return cfg


def example(problem="Tom has 3 boxes of 4 pens and 2 more pens. How many pens?", solution="", answer="", **kw):
    return Example(problem=problem, solution=solution, answer=answer, **kw)


def test_correct_arithmetic_is_kept():
    good = example(
        solution="3 × 4 + 2 = 14 pens. 1,200 + 300 = 1,500 and $\\frac{1}{2} + \\frac{1}{4} = "
        "\\frac{3}{4}$, 10 \\div 4 = 2.5, 100 ÷ 3 = 33.33, 20% × 50 = 10, so 10 + 4 = 14.",
        answer="14",
    )
    kept, report = verify_examples([good], config("arithmetic"))
    assert kept == [good] and report.steps_checked == 7 and not report.dropped


def test_wrong_step_is_dropped_with_offender():
    bad = example(solution="12 × 3 = 35 pens.", answer="35", seed_id="seed-7")
    kept, report = verify_examples([bad], config("arithmetic"))
    assert kept == []
    assert report.first_offender == {"arithmetic step wrong": "seed-7: arithmetic step wrong: 12 × 3 = 35"}


def test_unchecked_steps_are_not_dropped():
    text = (
        "Let x = 5. Then 2x = 10 and x + 3 = 8. The ratio 3:4 = 6:8, 1 km = 1000 m, 25% of 80 = 20, "
        "a <= 5, 2(x - 1) = 8."
    )
    kept, report = verify_examples([example(solution=text, answer="8")], config("arithmetic"))
    assert len(kept) == 1 and report.steps_checked == 0 and report.steps_unchecked == len(arithmetic_steps(text)) == 8


def test_final_answer_must_equal_last_step():
    ex = example(solution="3 × 4 = 12, then 12 + 2 = 14.\n#### 15", answer="15", seed_id="s1")
    kept, report = verify_examples([ex], config("arithmetic"))
    assert kept == [] and report.dropped == {"final answer mismatch": 1}
    assert report.first_offender["final answer mismatch"] == "s1: final answer 15 is not the last step's value 14"


def test_final_answer_read_from_the_solution_when_the_field_is_empty():
    ex = example(solution="3 × 4 = 12, then 12 + 2 = 14.\nThe answer is 14.")
    assert verify_examples([ex], config("arithmetic"))[0] == [ex]


def test_outputs_match_at_printed_precision():
    assert outputs_match("3.3333333333333335\n", " 3.33 ")
    assert outputs_match("x = 14\n", "x=14")
    assert not outputs_match("3\n", "3.4")
    assert not outputs_match("15\n", "14")


@pytest.mark.slow
def test_tool_programs_matched_mismatched_and_timed_out():
    programs = [
        ("print(3 * 4 + 2)", "14"),
        ("print(10 / 3)", "3.33"),
        ("print(3 * 4)", "13"),
        ("while True:\n    pass", "1"),
        ("import socket\nsocket.socket()", "0"),
    ]
    examples = [
        example(solution="see program", program=code, claimed_output=out, seed_id=f"t{i}")
        for i, (code, out) in enumerate(programs)
    ] + [example(solution="no program", seed_id="plain")]
    kept, report = verify_examples(examples, config("tool"))
    assert [ex.seed_id for ex in kept] == ["t0", "t1", "plain"]
    assert report.dropped == {"tool output mismatch": 1, "tool timeout": 1, "tool error": 1}
    assert report.first_offender["tool output mismatch"] == "t2: printed '12', claimed '13'"
    assert report.first_offender["tool timeout"].startswith("t3: ")
    assert "audit_hook" in report.sandbox_layers


def test_near_duplicate_problem_is_dropped():
    first = example(
        problem="A farmer has 12 cows and buys 5 more cows at the market. How many cows now?",
        solution="12 + 5 = 17",
        seed_id="a",
    )
    copy = example(
        problem="A farmer has 12 cows and buys 5 more cows at the market. How many cows now ?",
        solution="12 + 5 = 17",
        seed_id="b",
    )
    other = example(problem="What is the area of a square with side 7 centimetres?", solution="7 × 7 = 49", seed_id="c")
    kept, report = verify_examples([first, copy, other], config("near_dedup"))
    assert [ex.seed_id for ex in kept] == ["a", "c"] and report.dropped == {"near duplicate": 1}
    assert report.first_offender["near duplicate"].startswith("b: A farmer")


def test_contaminated_problem_is_dropped(tmp_path):
    eval_path = tmp_path / "test.jsonl"
    eval_path.write_text(json.dumps({"question": EVAL_QUESTION}) + "\n")
    copied = example(
        problem="Natalia sold clips to 48 of her friends in April, and then she sold half as many "
        "clips in May. How many in total?",
        solution="48 ÷ 2 = 24",
        seed_id="leak",
    )
    fresh = example(
        problem="A baker made 30 rolls and sold 12 of them. How many rolls are left?",
        solution="30 - 12 = 18",
        seed_id="ok",
    )
    kept, report = verify_examples([copied, fresh], config("decontaminate", eval_path=eval_path))
    assert kept == [fresh] and report.dropped == {"contaminated (gsm8k_test)": 1}
    assert report.first_offender["contaminated (gsm8k_test)"].startswith("leak: Natalia")


def test_the_decontaminate_filter_reads_the_registry_tasks_as_prepare_does(tmp_path):
    """The filter takes a data config's `decontaminate:` block: registry tasks under eval_root, each drop counted
    under its benchmark, a task whose file is missing reported and skipped."""
    write_benchmark_files(tmp_path, ["math", "ape210k", "svamp_all", "tabmwp"])
    examples = [
        example(problem=copy_of("math"), solution="2t - 1 = t, so t = 1 = 1", seed_id="math"),
        example(problem="A flower bed: find its area.", solution=copy_of("ape210k"), seed_id="ape"),
        example(problem=copy_of("svamp_all") + " How many are left?", solution="26 - 9 = 17", seed_id="svamp"),
        example(problem=copy_of("tabmwp"), solution="4 packs", seed_id="table"),
        example(seed_id="fresh"),
    ]
    block = {"tasks": ["math", "ape210k", "svamp_all", "tabmwp", "gsm8k"], "eval_root": str(tmp_path)}
    logs = []
    kept, report = verify_examples(examples, config("decontaminate", decontaminate=block), log=logs.append)
    assert [ex.seed_id for ex in kept] == ["fresh"]
    assert report.dropped == {f"contaminated ({name})": 1 for name in ("math", "ape210k", "svamp_all", "tabmwp")}
    assert report.decontamination["skipped"] == {"gsm8k": str(tmp_path / "gsm8k" / "test.jsonl")}
    assert list(report.decontamination["sets"]) == ["math", "ape210k", "svamp_all", "tabmwp"]
    assert f"decontamination skipped gsm8k: no file {tmp_path / 'gsm8k' / 'test.jsonl'}" in logs[1]


def test_length_limits():
    short = example(problem="2+2?", solution="2 + 2 = 4", seed_id="short")
    long = example(solution="x" * 2001, seed_id="long")
    fine = example(solution="3 × 4 + 2 = 14")
    kept, report = verify_examples([short, long, fine], config("length"))
    assert kept == [fine]
    assert report.first_offender == {
        "problem too short": "short: 4 characters",
        "solution too long": "long: 2001 characters",
    }


def test_report_counts_with_every_filter_in_order(tmp_path):
    eval_path = tmp_path / "test.jsonl"
    eval_path.write_text(json.dumps({"question": EVAL_QUESTION}) + "\n")
    examples = [
        example(solution="3 × 4 + 2 = 14", answer="14", seed_id="good"),
        example(problem="tiny", solution="1 + 1 = 2", seed_id="short"),
        example(solution="3 × 4 + 2 = 15", answer="15", seed_id="wrong"),
        example(problem=EVAL_QUESTION, solution="48 ÷ 2 = 24, 48 + 24 = 72", answer="72", seed_id="leak"),
        example(solution="3 × 4 + 2 = 14", answer="14", program="print(15)", claimed_output="14", seed_id="liar"),
        example(solution="3 × 4 + 2 = 14", answer="14", seed_id="dup"),
    ]
    kept, report = verify_examples(examples, config(*FILTERS, eval_path=eval_path))
    assert [ex.seed_id for ex in kept] == ["good"]
    assert report.to_dict() == {
        "read": 6,
        "kept": 1,
        "dropped": {
            "problem too short": 1,
            "arithmetic step wrong": 1,
            "contaminated (gsm8k_test)": 1,
            "tool output mismatch": 1,
            "near duplicate": 1,
        },
        "first_offender": {
            "problem too short": "short: 4 characters",
            "arithmetic step wrong": "wrong: arithmetic step wrong: 3 × 4 + 2 = 15",
            "contaminated (gsm8k_test)": "leak: " + EVAL_QUESTION[:80],
            "tool output mismatch": "liar: printed '15', claimed '14'",
            "near duplicate": "dup: Tom has 3 boxes of 4 pens and 2 more pens. How many pens?",
        },
        "steps_checked": 6,
        "steps_unchecked": 0,
        "sandbox_layers": list(report.sandbox_layers),
        "decontamination": {"sets": {"gsm8k_test": str(eval_path)}, "skipped": {}},
    }
