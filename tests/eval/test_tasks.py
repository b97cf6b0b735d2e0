import json
import random

import pytest

from minimath.data.synth.arithmetic import ArithmeticSource
from minimath.data.synth.base import split_of
from minimath.data.synth.word_problems import WordProblemSource
from minimath.errors import UserError
from minimath.eval.tasks import heldout_task, load_public_task


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_gsm8k(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", [{"question": "q1", "answer": "1+1=<<1+1=2>>2\n#### 2"},
                                                 {"question": "q2", "answer": "so\n#### 1,000"}])
    task = load_public_task("gsm8k", "gsm8k", path=path)
    assert [d.gold for d in task.docs] == ["2", "1000"] and task.kind == "numeric"
    assert task.docs[0].solution == "1+1=<<1+1=2>>2"


def test_math23k_json_and_ape210k_jsonl(tmp_path):
    rec = {"id": "1", "original_text": "一本书120页，看了80%，看了多少页？", "segmented_text": "", "equation": "x=120*80%",
           "ans": "96"}
    (tmp_path / "m.json").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [rec, rec]))
    task = load_public_task("math23k", "math23k", path=str(tmp_path / "m.json"),
                            fewshot_path=write_jsonl(tmp_path / "a.jsonl", [rec]))
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
    hf = write_jsonl(tmp_path / "hf.jsonl", [{"question": "q", "subject": "s", "choices": ["a", "b", "c", "d"],
                                             "answer": 3}])
    assert load_public_task("mmlu", "mmlu", path=hf).docs[0].gold == "D"


@pytest.mark.parametrize("content,fmt,message", [
    ('{"question": "q", "answer": "#### 1"}\n{broken\n', "gsm8k", "t.jsonl:2: malformed JSON"),
    ('{"question": "q"}\n', "gsm8k", "t.jsonl:1: missing field 'answer'"),
    ('{"question": "q", "answer": "no marker"}\n', "gsm8k", "t.jsonl:1: GSM8K answer has no"),
    ('{"question": "q", "A": "a", "B": "b", "C": "c", "D": "d", "answer": "E"}\n', "mmlu", "not one of A-D"),
])
def test_malformed_files_are_one_line_errors_naming_file_and_line(tmp_path, content, fmt, message):
    (tmp_path / "t.jsonl").write_text(content)
    with pytest.raises(UserError, match=message):
        load_public_task("x", fmt, path=str(tmp_path / "t.jsonl"))


def test_missing_file_without_hub(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_public_task("math23k", "math23k", path=str(tmp_path / "none.json"))


@pytest.mark.parametrize("name", ["arithmetic", "equations", "word_problems"])
def test_heldout_sets_are_deterministic_and_in_the_heldout_split(name):
    a, b = heldout_task(name, 50), heldout_task(name, 50)
    assert [(d.question, d.gold) for d in a.docs] == [(d.question, d.gold) for d in b.docs]
    assert len({d.question for d in a.docs}) == len(a.docs) == 50  # distinct items: none weighs twice


def test_heldout_set_larger_than_its_space_is_a_clear_error(monkeypatch):
    from minimath.data.synth.arithmetic import ArithmeticSource

    monkeypatch.setattr(ArithmeticSource, "problem", lambda self, rng: ("1 + 1", 2, [], "integer"))
    with pytest.raises(UserError, match="only 1 distinct items"):
        heldout_task("arithmetic", 3)


def test_training_generators_never_produce_heldout_problems():
    rng = random.Random(0)
    train = ArithmeticSource(kinds=("integer", "decimal", "fraction"))
    assert all(split_of(train.problem(rng)[0]) == "train" for _ in range(3000))
    heldout = {d.question.removesuffix(" =") for d in heldout_task("arithmetic", 200).docs}
    assert all(split_of(q) == "heldout" for q in heldout)
    words = WordProblemSource()
    assert all(split_of(words.record(rng)["original_text"]) == "train" for _ in range(500))
