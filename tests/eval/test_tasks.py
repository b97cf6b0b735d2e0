import json
import random
import re
from collections import Counter

import pytest

from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.data.synth.base import split_of
from minimath.data.synth.word_problems import WordProblemSource
from minimath.errors import UserError
from minimath.eval.tasks import heldout_task, load_public_task, operator_quotas

from conftest import embedded_heldout


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_gsm8k(tmp_path):
    path = write_jsonl(
        tmp_path / "test.jsonl",
        [{"question": "q1", "answer": "1+1=<<1+1=2>>2\n#### 2"}, {"question": "q2", "answer": "so\n#### 1,000"}],
    )
    task = load_public_task("gsm8k", "gsm8k", path=path)
    assert [d.gold for d in task.docs] == ["2", "1000"] and task.kind == "numeric"
    assert task.docs[0].solution == "1+1=<<1+1=2>>2"


def test_math23k_json_and_ape210k_jsonl(tmp_path):
    rec = {
        "id": "1",
        "original_text": "一本书120页，看了80%，看了多少页？",
        "segmented_text": "",
        "equation": "x=120*80%",
        "ans": "96",
    }
    (tmp_path / "m.json").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [rec, rec]))
    task = load_public_task(
        "math23k", "math23k", path=str(tmp_path / "m.json"), fewshot_path=write_jsonl(tmp_path / "a.jsonl", [rec])
    )
    assert len(task.docs) == 2 and task.docs[0].gold == "96"
    assert task.fewshot[0].solution.endswith("答：96")


def test_math_gold_from_last_boxed(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"problem": "p", "solution": "so $\\boxed{\\frac{1}{2}}$"}])
    assert load_public_task("math", "math", path=path).docs[0].gold == "\\frac{1}{2}"


def test_multiple_choice_layouts(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "anatomy_test.csv").write_text('What is 1+1?,1,2,3,4,B\n"A, quoted",w,x,y,z,D\n')
    (tmp_path / "val.csv").write_text("id,question,A,B,C,D,answer,explanation\n0,问题,甲,乙,丙,丁,C,\n")
    (tmp_path / "cmmlu.csv").write_text(",Question,A,B,C,D,Answer\n0,问,a,b,c,d,A\n")
    mmlu = load_public_task("mmlu", "mmlu", path=str(tmp_path / "test" / "*.csv"))
    assert [(d.gold, d.subject) for d in mmlu.docs] == [("B", "anatomy"), ("D", "anatomy")]
    assert mmlu.docs[1].question == "A, quoted" and mmlu.docs[0].choices == ["1", "2", "3", "4"]
    assert load_public_task("ceval", "ceval", path=str(tmp_path / "val.csv")).docs[0].gold == "C"
    assert load_public_task("cmmlu", "cmmlu", path=str(tmp_path / "cmmlu.csv")).docs[0].choices == list("abcd")
    hf = write_jsonl(
        tmp_path / "hf.jsonl", [{"question": "q", "subject": "s", "choices": ["a", "b", "c", "d"], "answer": 3}]
    )
    assert load_public_task("mmlu", "mmlu", path=hf).docs[0].gold == "D"


@pytest.mark.parametrize(
    "content,fmt,message",
    [
        ('{"question": "q", "answer": "#### 1"}\n{broken\n', "gsm8k", "t.jsonl:2: malformed JSON"),
        ('{"question": "q"}\n', "gsm8k", "t.jsonl:1: missing field 'answer'"),
        ('{"question": "q", "answer": "no marker"}\n', "gsm8k", "t.jsonl:1: GSM8K answer has no"),
        ('{"question": "q", "A": "a", "B": "b", "C": "c", "D": "d", "answer": "E"}\n', "mmlu", "not one of A-D"),
    ],
)
def test_malformed_files_are_one_line_errors_naming_file_and_line(tmp_path, content, fmt, message):
    (tmp_path / "t.jsonl").write_text(content)
    with pytest.raises(UserError, match=message):
        load_public_task("x", fmt, path=str(tmp_path / "t.jsonl"))


def test_missing_file_without_hub(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_public_task("math23k", "math23k", path=str(tmp_path / "none.json"))


@pytest.mark.parametrize("name", ["arithmetic", "equations", "word_problems"])
def test_heldout_sets_are_deterministic_and_in_the_heldout_split(name):
    a, b = heldout_task(name, 50, embedded_heldout()[name]), heldout_task(name, 50, embedded_heldout()[name])
    assert [(d.question, d.gold) for d in a.docs] == [(d.question, d.gold) for d in b.docs]
    assert len({d.question for d in a.docs}) == len(a.docs) == 50  # distinct items: none weighs twice


def test_heldout_set_larger_than_its_space_is_a_clear_error(monkeypatch):
    from minimath.data.synth.arithmetic import ArithmeticSource

    monkeypatch.setattr(ArithmeticSource, "problem", lambda self, rng: ("1 + 1", 2, [], "integer", "+"))
    with pytest.raises(UserError, match="only 1 distinct items"):
        heldout_task("arithmetic", 3, ArithmeticSource())


def test_heldout_arithmetic_follows_the_training_operator_mix():
    # 4:4:1:1 as the embedded default trains; 2-digit subtraction's held-out space (~100 problems) must not let
    # the other operators over-fill the set
    source = ArithmeticSource(operators=("+", "-", "+", "-", "+", "-", "+", "-", "*", "/"))
    counts = Counter(d.category for d in heldout_task("arithmetic", 200, source).docs)
    assert counts == {"+": 80, "-": 80, "*": 20, "/": 20}
    assert operator_quotas(("+", "-", "*", "/"), 3) == {"+": 1, "-": 1, "*": 1, "/": 0}  # largest remainder
    assert sum(operator_quotas(("+", "-", "+", "*", "/", "/", "/"), 30).values()) == 30
    one = ArithmeticSource(operators=("-",))
    assert {d.category for d in heldout_task("arithmetic", 40, one).docs} == {"-"}
    with pytest.raises(UserError, match=r"missing -: \d+ of 150"):  # ~100 distinct 2-digit differences exist
        heldout_task("arithmetic", 150, one)


def test_training_generators_never_produce_heldout_problems():
    rng = random.Random(0)
    train = ArithmeticSource(kinds=("integer", "decimal", "fraction"))
    assert all(split_of(train.problem(rng)[0]) == "train" for _ in range(3000))
    heldout = {d.question.removesuffix(" =") for d in heldout_task("arithmetic", 200, train).docs}
    assert all(split_of(q) == "heldout" for q in heldout)
    words = WordProblemSource()
    assert all(split_of(words.record(rng)["original_text"]) == "train" for _ in range(500))


# Records as the public test files write them (ids, equations and answers copied from the Math23k 1k test and the
# Ape210k test; question texts shortened): every answer shape those files use.
MATH23K_RECORDS = [
    ("440", "x=1-(1/6)-(1/6)", "((2)/(3))"),
    ("1302", "x=(2/5)+(1/3)+(3/8)-1", "((13)/(120))"),
    ("2305", "x=10*(1-(2/5))-(3/10)", "5((7)/(10))"),
    ("18063", "x=15/7", "2((1)/(7))"),
    ("923", "x=(120-90)/120", "25%"),
    ("730", "x=35/8", "4.375"),
    ("5868", "x=135.60+12.20+135.60", "283.40"),
    ("7207", "x=5.25", "((21)/(4))"),
    ("243", "x=3.14*[(3+2)^2-3^2]", "50.24"),
    ("514", "x=12*25/20", "15"),
    ("1291", "x=[(20000*6)-(20000-200)]/6", "16700"),
]
APE210K_RECORDS = [
    ("328487", "x=(45+39)/(45-39)", "(45+39)/(45-39)"),
    ("215279", "x=(3/8)/(1/5)", "(3/8)/(1/5)"),
    ("294840", "x=(2(5/11)+0.25)/(4/7+1/28)", "4(5/11)"),
    ("681137", "x=(1/10)", "(1/10)"),
    ("155142", "x=(1/3)", "(13/39)"),
    ("298954", "x=60%/(1-60%)", "150%"),
    ("672453", "x=10.00", "10.00"),
    ("651633", "x=(1/3)*3.14*(31.4/(2*3.14))**2*1.2/(10/100*4)", "78.5"),
    ("313230", "x=2.75-1(5/6)+3(1/4)-2(1/6)", "2"),
    ("973841", "x=135000/1.6", "84375"),
]


def math23k_file(path, records):
    """Math23k's own layout: pretty-printed objects one after another (not a JSON array)."""
    path.write_text(
        "".join(
            json.dumps(
                {"id": i, "original_text": f"题{i}", "segmented_text": f"题 {i}", "equation": e, "ans": a},
                ensure_ascii=False,
                indent=4,
            )
            + "\n"
            for i, e, a in records
        ),
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.parametrize("name,records", [("math23k", MATH23K_RECORDS), ("ape210k", APE210K_RECORDS)])
def test_published_answers_score_right_and_off_by_one_scores_wrong(tmp_path, name, records):
    from test_runner import protocol

    from minimath.data.synth.expression import evaluate, parse_equation
    from minimath.eval.answers import answer_value
    from minimath.eval.runner import rescore

    if name == "math23k":
        path = math23k_file(tmp_path / "test.json", records)
    else:
        path = write_jsonl(
            tmp_path / "test.ape.json",
            [
                {"id": i, "segmented_text": "", "original_text": f"题{i}", "ans": a, "equation": e}
                for i, e, a in records
            ],
        )
    task = load_public_task(name, name, path=path)
    assert [d.gold for d in task.docs] == [a for _, _, a in records]
    assert all(evaluate(parse_equation(e)) == answer_value(a) for _, e, a in records)  # each equation gives its answer
    for p in (protocol(), protocol("report", extraction="last_number")):
        gold = [{"doc_id": i, "output": f"第1步：……\n答：{d.gold}"} for i, d in enumerate(task.docs)]
        assert rescore(task, gold, p)[0]["accuracy"] == 1.0
        wrong = [{"doc_id": i, "output": f"答：{answer_value(d.gold) + 1}"} for i, d in enumerate(task.docs)]
        assert rescore(task, wrong, p)[0]["accuracy"] == 0.0
    if name == "math23k":  # a fraction whose denominator is the gold is not the gold
        summary, records = rescore(task, [{"doc_id": 9, "output": "答：((4)/(15))"}], protocol())
        assert records[9]["extracted"] == "((4)/(15))" and not records[9]["correct"]


def test_gsm8k_gold_solutions_score_and_the_next_integer_does_not(tmp_path):
    from test_runner import protocol

    from minimath.eval.runner import rescore

    path = write_jsonl(
        tmp_path / "test.jsonl",
        [
            {"question": "q", "answer": "He has 48/2 = <<48/2=24>>24 clips.\n#### 24"},
            {"question": "q", "answer": "It costs 70,000 + 5 = <<70000+5=70005>>70,005 dollars.\n#### 70005"},
            {"question": "q", "answer": "She loses 3 - 5 = <<3-5=-2>>-2.\n#### -2"},
        ],
    )
    task = load_public_task("gsm8k", "gsm8k", path=path)
    raw = [json.loads(line)["answer"] for line in open(path)]
    for p in (protocol(), protocol("report", extraction="last_number")):
        assert rescore(task, [{"doc_id": i, "output": a} for i, a in enumerate(raw)], p)[0]["accuracy"] == 1.0
        plus_one = [{"doc_id": i, "output": f"The answer is {int(d.gold) + 1}."} for i, d in enumerate(task.docs)]
        assert rescore(task, plus_one, p)[0]["accuracy"] == 0.0


def test_missing_few_shot_pool_falls_back_to_the_projects_exemplars_and_says_so(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", [{"question": "q", "answer": "#### 1"}])
    task = load_public_task("gsm8k", "gsm8k", path=path, fewshot_path=str(tmp_path / "missing.jsonl"))
    assert task.fewshot_source == "fixed:fewshot_gsm8k.jsonl" and len(task.fewshot) == 8
    assert all(d.gold.isdigit() and d.solution for d in task.fewshot)
    for fmt, k in (("math23k", 5), ("math", 4)):
        fixed = load_public_task(
            fmt,
            fmt,
            path=math23k_file(tmp_path / "m.json", MATH23K_RECORDS[:1])
            if fmt == "math23k"
            else write_jsonl(tmp_path / "p.jsonl", [{"problem": "p", "solution": "$\\boxed{1}$"}]),
        )
        assert len(fixed.fewshot) == k and all(d.solution for d in fixed.fewshot)
    mmlu = tmp_path / "x_test.csv"
    mmlu.write_text("q,1,2,3,4,A\n")
    assert load_public_task("mmlu", "mmlu", path=str(tmp_path / "*_test.csv")).fewshot_source == "none"


def test_heldout_sets_follow_the_training_sources_settings():
    from minimath.data.synth.equations import LinearEquationSource

    four_digit = ArithmeticSource(max_digits=4, kinds=("decimal",), operators=("+", "-"), languages=("en", "zh"))
    task = heldout_task("arithmetic", 100, four_digit)
    assert {d.category for d in task.docs} == {"+", "-"} and sum("." in d.question for d in task.docs) > 50
    assert {d.context for d in task.docs} == {"Calculate:\n", "计算：\n"}
    assert {d.context for d in heldout_task("arithmetic", 20, ArithmeticSource(languages=("en",))).docs} == {""}
    equations = heldout_task("equations", 30, LinearEquationSource(forms=("ax+b=c", "system"), languages=("en",)))
    assert all(d.question.startswith("Solve") for d in equations.docs) and equations.kind == "assignments"
    # every trained form is held out, in the training draw's proportions, each scored on all its unknowns
    assert Counter(d.category for d in equations.docs) == {"ax+b=c": 15, "system": 15}
    systems = [d for d in equations.docs if d.category == "system"]
    assert all(", " in d.question and re.fullmatch(r"x = -?\d+, y = -?\d+", d.gold) for d in systems)
    assert all(re.fullmatch(r"x = -?\d+", d.gold) for d in equations.docs if d.category == "ax+b=c")
    with pytest.raises(UserError, match="needs a ArithmeticSource generator"):
        heldout_task("arithmetic", 5, WordProblemSource())
