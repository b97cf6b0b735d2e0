"""JiuZhang3.0's benchmark suite: each task loads a file written in its public layout (records written here in that
shape, under the directory names of JiuZhang3.0's eval/data/) through its conf/task YAML, states the question the
model sees and the gold it is scored against, and the scorer accepts the gold as a model writes it and rejects
gold + 1. `tasks=jiuzhang` selects the eight tasks, and results.md prints the suite's table with its average."""

import json
from pathlib import Path

import pytest
from test_runner import protocol

from minimath.eval.answers import answer_value
from minimath.eval.modes import build_task, task_config, task_names
from minimath.eval.prompts import build_prompt
from minimath.eval.runner import markdown_table, rescore
from minimath.numbers import format_number

from conftest import compose_config

SUITE = ["gsm8k", "math500", "gsm_hard", "svamp_all", "tabmwp", "asdiv", "mawps", "carp_en"]


@pytest.fixture(scope="module")
def eval_cfg(tmp_path_factory):
    """The eval config of `python eval.py tasks=jiuzhang paths.eval_root=<a directory laid out as eval/data/>`."""
    root = tmp_path_factory.mktemp("eval_data")
    return compose_config(
        ["tasks=jiuzhang", f"paths.eval_root={root}", "paths.output_dir=out"], root, config_name="eval"
    )


def load(eval_cfg, name: str, data_dir: str, records: list[dict]):
    """Task `name` read from `<eval_root>/<data_dir>/test.jsonl` holding `records`, one JSON object a line."""
    path = Path(eval_cfg.paths.eval_root) / data_dir / "test.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return build_task(task_config(eval_cfg, name))


def scores(task, outputs: list[str], **protocol_kw) -> float:
    predictions = [{"doc_id": i, "output": out} for i, out in enumerate(outputs)]
    return rescore(task, predictions, protocol(**protocol_kw))[0]["accuracy"]


def plus_one(gold: str) -> str:
    return format_number(answer_value(gold) + 1)


def assert_accepts_gold_and_rejects_gold_plus_one(task, written=None):
    """The gold as a model writes it (`written`: per item, when it differs from the gold's text) after "The answer
    is" and in \\boxed{}, under both protocols' extractions, is right; gold + 1 is wrong."""
    written = written or [d.gold for d in task.docs]
    for extraction in ("auto", "last_number"):
        assert scores(task, [f"So we get it.\nThe answer is {w}." for w in written], extraction=extraction) == 1.0
        assert scores(task, [f"Putting it together: $\\boxed{{{w}}}$" for w in written], extraction=extraction) == 1.0
    assert scores(task, [f"The answer is {plus_one(d.gold)}." for d in task.docs]) == 0.0


def test_the_suite_selector_lists_all_eight_tasks_each_with_its_task_config(eval_cfg):
    assert eval_cfg.tasks == "jiuzhang" and task_names(eval_cfg.tasks) == SUITE
    assert task_names(["jiuzhang", "math23k", "gsm8k"]) == SUITE + ["math23k"]
    for name in SUITE:
        cfg = task_config(eval_cfg, name)
        assert cfg.name == name and str(cfg.path).startswith(str(eval_cfg.paths.eval_root))


def test_the_suite_table_prints_its_columns_in_its_order_with_their_average():
    accuracy = dict(zip(SUITE, (0.5, 0.25, 0.125, 0.75, 0.5, 0.625, 0.875, 0.375)))
    table = markdown_table({**{k: {"accuracy": a} for k, a in accuracy.items()}, "math23k": {"accuracy": 0.6}}, "m")
    suite_head, _, suite_row, blank, head, _, row = table.split("\n")
    assert suite_head == "|model|GSM8k|MATH|GSM-H|SVAMP|TabMWP|ASDiv|MAWPS|CARP|Avg.|"
    assert suite_row == "|m|50.00%|25.00%|12.50%|75.00%|50.00%|62.50%|87.50%|37.50%|50.00%|"
    assert blank == "" and (head, row) == ("|model|MATH23K|Math Avg.|", "|m|60.00%|60.00%|")
    head, _, row = markdown_table({k: {"accuracy": 0.5} for k in SUITE[:3]}, "m").split("\n")  # not all: no suite
    assert (head, row) == ("|model|GSM8K|Math Avg.|math500|gsm_hard|", "|m|50.00%|50.00%|50.00%|50.00%|")


def test_math500_reads_the_answer_field_and_compares_through_the_math_equality(eval_cfg):
    records = [
        {
            "problem": "What is $\\frac{1}{2}+\\frac{1}{3}$?",
            "solution": "$\\frac{3}{6}+\\frac{2}{6}=\\boxed{\\frac{5}{6}}$.",
            "answer": "\\frac{5}{6}",
            "subject": "Prealgebra",
            "level": 1,
            "unique_id": "test/prealgebra/1.json",
        },
        {
            "problem": "Find $x$ if $2x+3=11$.",
            "solution": "Then $2x=8$, so $x=\\boxed{4}$.",
            "answer": "4",
            "subject": "Algebra",
            "level": 1,
            "unique_id": "test/algebra/2.json",
        },
        {
            "problem": "How many positive divisors does 12 have?",
            "solution": "They are 1, 2, 3, 4, 6, 12: $\\boxed{6}$.",
            "answer": "6",
            "subject": "Number Theory",
            "level": 2,
            "unique_id": "test/number_theory/3.json",
        },
    ]
    task = load(eval_cfg, "math500", "math-oai", records)
    assert task.kind == "math" and task.docs[1].question == "Find $x$ if $2x+3=11$."
    assert [d.gold for d in task.docs] == ["\\frac{5}{6}", "4", "6"]
    assert task.fewshot_source == "fixed:fewshot_math.jsonl"
    assert_accepts_gold_and_rejects_gold_plus_one(task)


def test_svamp_all_reads_body_and_question_with_a_numeric_answer(eval_cfg):
    records = [
        {
            "ID": "chal-1",
            "Body": "Jack had 8 pens and Mary had 5 pens",
            "Question": "How many pens do they have?",
            "Equation": "( 8.0 + 5.0 )",
            "Answer": 13.0,
            "Type": "Addition",
        },
        {
            "ID": "chal-2",
            "Body": "A pizza is cut into 8 slices. Tom eats 3 slices.",
            "Question": "How many are left?",
            "Equation": "( 8.0 - 3.0 )",
            "Answer": 5.0,
            "Type": "Subtraction",
        },
        {
            "ID": "chal-3",
            "Body": "Sara shares 7 apples equally with a friend",
            "Question": "How many does each get?",
            "Equation": "( 7.0 / 2.0 )",
            "Answer": 3.5,
            "Type": "Common-Division",
        },
    ]
    task = load(eval_cfg, "svamp_all", "svamp", records)
    assert task.docs[0].question == "Jack had 8 pens and Mary had 5 pens. How many pens do they have?"
    assert task.docs[1].question == "A pizza is cut into 8 slices. Tom eats 3 slices. How many are left?"
    assert [d.gold for d in task.docs] == ["13", "5", "3.5"]
    assert task.fewshot_source == "fixed:fewshot_svamp.json"  # all 1,000 problems are evaluated: none left to show
    assert_accepts_gold_and_rejects_gold_plus_one(task)


def test_asdiv_drops_the_unit_in_parentheses_and_leaves_out_multi_answer_problems(eval_cfg):
    records = [
        {
            "body": "Seven red apples and two green apples are in the basket.",
            "question": "How many apples are in it?",
            "solution_type": "Addition",
            "answer": "9 (apples)",
            "formula": "7+2=9",
        },
        {
            "body": "A rope is 6 meters long. It is cut into 4 equal parts.",
            "question": "How long is each part?",
            "solution_type": "Common-Division",
            "answer": "1.5 (meters)",
            "formula": "6/4=1.5",
        },
        {
            "body": "There are 5 red and 3 blue cars.",
            "question": "How many red and how many blue cars are there?",
            "solution_type": "Set-Operation",
            "answer": "5 (red cars); 3 (blue cars)",
            "formula": "5;3",
        },
        {
            "body": "Ann is 12 and Bo is 9.",
            "question": "Who is older?",
            "solution_type": "Comparison",
            "answer": "Ann",
            "formula": "12>9",
        },
    ]
    task = load(eval_cfg, "asdiv", "asdiv", records)
    assert len(task.docs) == 3  # the two-answer problem is left out, as JiuZhang3.0 does
    assert (
        task.docs[0].question == "Seven red apples and two green apples are in the basket. How many apples are in it?"
    )
    assert [d.gold for d in task.docs] == ["9", "1.5", "Ann"]
    assert scores(task, ["The answer is 9 apples.", "Each part is 1.5 meters.", "The answer is ann."]) == 1.0
    assert scores(task, ["\\boxed{9}", "\\boxed{1.5}", "The answer is Bo."]) == 2 / 3
    numeric = build_task(task_config(eval_cfg, "asdiv"))
    numeric.docs = numeric.docs[:2]
    assert_accepts_gold_and_rejects_gold_plus_one(numeric)


def test_mawps_reads_input_and_target_with_its_subset_as_the_category(eval_cfg):
    records = [
        {
            "idx": 0,
            "input": "Joan found 70 seashells. She gave Sam 43. How many does she have now?",
            "target": 27.0,
            "type": "addsub",
        },
        {"idx": 1, "input": "A box holds 6 eggs. How many eggs are in 4 boxes?", "target": 24.0, "type": "singleop"},
        {"idx": 2, "input": "If 2 x + 1 = 2, what is x?", "target": 0.5, "type": "singleeq"},
    ]
    task = load(eval_cfg, "mawps", "mawps", records)
    assert task.docs[1].question == "A box holds 6 eggs. How many eggs are in 4 boxes?"
    assert [(d.gold, d.category) for d in task.docs] == [("27", "addsub"), ("24", "singleop"), ("0.5", "singleeq")]
    assert_accepts_gold_and_rejects_gold_plus_one(task)
    summary, _ = rescore(task, [{"doc_id": i, "output": "The answer is 24."} for i in range(3)], protocol())
    assert summary["by_category"] == {"addsub": 0.0, "singleeq": 0.0, "singleop": 1.0}


def test_gsm_hard_float_targets_are_the_values_their_programs_compute(eval_cfg):
    code = "def solution():\n    eggs = 16 - 3 - 4933828\n    result = eggs * 2\n    return result"
    records = [
        {
            "input": "Janet's ducks lay 16 eggs a day. She eats 3 and bakes with 4933828. She sells the rest at $2 "
            "each. How much does she make?",
            "code": code,
            "target": -9867630.0,
        },
        {
            "input": "Claire makes a 6022727 egg omelet every morning. How many dozens of eggs does she eat in 4 weeks?",
            "code": "def solution():\n    result = 6022727 * 28 / 12\n    return result",
            "target": 14053029.666666666,
        },
        {
            "input": "A shop sells 531811 apps at $1.1 each. How much money does it make?",
            "code": "def solution():\n    result = 531811 * 1.1\n    return result",
            "target": 584992.1,
        },
    ]
    task = load(eval_cfg, "gsm_hard", "gsm-hard", records)
    assert task.docs[1].question == records[1]["input"] and task.docs[0].solution == code
    assert [d.gold for d in task.docs] == ["-9867630", "42159089/3", "584992.1"]
    # a model writes the repeating decimal rounded, or as the program prints it
    assert_accepts_gold_and_rejects_gold_plus_one(task, written=["-9867630", "14053029.67", "584992.1"])
    assert scores(task, ["", "The answer is 14053029.666666666.", ""]) == 1 / 3
    assert scores(task, ["", "The answer is 14053029.68.", ""]) == 0.0


TABMWP = [
    {
        "question": "Some kids counted their marbles. How many marbles do they have in all?",
        "choices": None,
        "answer": "1,250",
        "unit": None,
        "table_title": "Marbles",
        "table": "Name | Marbles\nKai | 700\nLia | 550",
        "table_for_pd": {"Name": ["Kai", "Lia"], "Marbles": ["700", "550"]},
        "row_num": 3,
        "column_num": 2,
        "solution": "700 + 550 = 1,250",
        "ques_type": "free_text",
        "ans_type": "integer_number",
        "grade": 3,
        "split": "test",
    },
    {
        "question": "Which day was the warmest?",
        "choices": ["Monday", "Tuesday"],
        "answer": "Tuesday",
        "unit": None,
        "table_title": "Temperatures",
        "table": "Day | Temperature (°C)\nMonday | 18\nTuesday | 21",
        "table_for_pd": {"Day": ["Monday", "Tuesday"], "Temperature (°C)": ["18", "21"]},
        "row_num": 3,
        "column_num": 2,
        "solution": "21 is more than 18.",
        "ques_type": "multi_choice",
        "ans_type": "extractive_text",
        "grade": 2,
        "split": "test",
    },
    {
        "question": "Is 15 more than the number of cats?",
        "choices": ["yes", "no"],
        "answer": "no",
        "unit": None,
        "table_title": None,
        "table": "Pet | Number\ncats | 17",
        "table_for_pd": {"Pet": ["cats"], "Number": ["17"]},
        "row_num": 2,
        "column_num": 2,
        "solution": "17 is more than 15.",
        "ques_type": "multi_choice",
        "ans_type": "boolean_text",
        "grade": 1,
        "split": "test",
    },
]


def test_tabmwp_puts_the_table_and_the_options_in_the_question_and_scores_words_as_words(eval_cfg):
    task = load(eval_cfg, "tabmwp", "tabmwp", TABMWP)
    assert task.docs[1].question == (
        'Read the following table regarding "Temperatures" and answer a question:\n'
        "Day | Temperature (°C)\nMonday | 18\nTuesday | 21\n"
        "Which day was the warmest? Please select from the following options: ['Monday', 'Tuesday']"
    )
    assert task.docs[2].question == (
        "Read the following table and answer a question:\nPet | Number\ncats | 17\n"
        "Is 15 more than the number of cats? Please select from the following options: ['yes', 'no'] (Yes or No)"
    )
    assert [d.gold for d in task.docs] == ["1,250", "Tuesday", "no"]
    prompt = build_prompt(task, task.docs[0], task.fewshot[:1], "standard").text
    assert (
        prompt.endswith(
            "Name | Marbles\nKai | 700\nLia | 550\nSome kids counted their marbles. How many marbles do"
            " they have in all?\nAnswer:"
        )
        and task.fewshot_source == "fixed:fewshot_tabmwp.jsonl"
    )
    assert scores(task, ["The answer is 1250.", "The answer is $\\text{Tuesday}$.", "So the answer is No."]) == 1.0
    assert scores(task, ["\\boxed{1,250}", "\\boxed{Tuesday}", "no"]) == 1.0
    assert scores(task, ["The answer is 1251.", "The answer is Monday.", "The answer is yes."]) == 0.0


def test_tabmwp_also_reads_promptpgs_id_keyed_problems_file(eval_cfg, tmp_path):
    keyed = tmp_path / "problems_test.json"
    keyed.write_text(json.dumps({str(i): r for i, r in enumerate(TABMWP, start=16)}), encoding="utf-8")
    from_jsonl = load(eval_cfg, "tabmwp", "tabmwp", TABMWP)
    cfg = task_config(eval_cfg, "tabmwp")
    cfg.path = str(keyed)
    assert build_task(cfg).docs == from_jsonl.docs


def test_carp_en_compares_spaced_latex_expressions_through_the_math_equality(eval_cfg):
    records = [
        {
            "content": "What is the solution to $\\frac { 3 } { x + 1 } = 1$?",
            "answer": "x = 2",
            "steps": "Multiplying by $x + 1$ gives $x + 1 = 3$, so $x = 2$.",
            "expr_cands": ["x = 2"],
            "exprs": ["x = 2"],
            "edges": {"directed": True, "multigraph": False, "graph": {}, "nodes": [{"id": "x = 2"}], "links": []},
        },
        {
            "content": "Calculate: $\\frac { 3 } { 4 } - \\frac { 1 } { 4 }$ = ____ ?",
            "answer": "\\frac { 1 } { 2 }",
            "steps": "$\\frac { 3 } { 4 } - \\frac { 1 } { 4 } = \\frac { 2 } { 4 } = \\frac { 1 } { 2 }$.",
            "expr_cands": [],
            "exprs": [],
            "edges": {},
        },
        {
            "content": "If $a = - 2$, then $a ^ { 3 }$ = ____ ?",
            "answer": "- 8",
            "steps": "$( - 2 ) ^ { 3 } = - 8$.",
            "expr_cands": [],
            "exprs": [],
            "edges": {},
        },
        {
            "content": "Simplify $x ^ { 2 } \\cdot x ^ { 4 }$.",
            "answer": "x ^ { 6 }",
            "steps": "$x ^ { 2 } \\cdot x ^ { 4 } = x ^ { 6 }$.",
            "expr_cands": [],
            "exprs": [],
            "edges": {},
        },
    ]
    task = load(eval_cfg, "carp_en", "carp_en", records)
    assert task.kind == "math" and task.docs[2].question == "If $a = - 2$, then $a ^ { 3 }$ = ____ ?"
    assert [d.gold for d in task.docs] == ["x = 2", "\\frac { 1 } { 2 }", "- 8", "x ^ { 6 }"]
    written = ["x=2", "\\frac{1}{2}", "-8", "x^{6}"]  # as a model writes them, unspaced
    assert scores(task, [f"The answer is ${w}$." for w in written]) == 1.0
    assert scores(task, [f"\\boxed{{{w}}}" for w in written]) == 1.0
    assert scores(task, ["\\boxed{x=3}", "\\boxed{\\frac{3}{2}}", "\\boxed{-7}", "\\boxed{x^{6}+1}"]) == 0.0
