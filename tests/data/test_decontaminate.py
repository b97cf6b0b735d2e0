import json

from minimath.data.decontaminate import Decontaminator, units
from minimath.data.eval_sets import build_decontaminator, resolve_eval_sets


def test_units_split_cjk_by_character():
    assert units("小明有12个苹果, he ate 3.5") == ["小", "明", "有", "12", "个", "苹", "果", "he", "ate", "3.5"]


def test_planted_test_item_is_removed(tmp_path):
    test_item = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
    (tmp_path / "test.jsonl").write_text(json.dumps({"question": test_item, "answer": "#### 72"}) + "\n")
    sets = resolve_eval_sets(
        {"eval_sets": [{"name": "gsm8k_test", "path": str(tmp_path / "test.jsonl"), "fields": ["question"]}]}
    )
    decon = build_decontaminator(sets, 8, log=lambda *_: None)
    planted = "Some preamble. " + test_item.upper() + " More text after it."
    assert decon.contaminated_by(planted) == ("gsm8k_test",)
    assert decon.contaminated_by("Natalia sold clips to friends; an unrelated question about May.") == ()


def test_chinese_items_match_on_characters():
    decon = Decontaminator(n=10)
    decon.add_eval_texts("math23k_test", ["学校买来120本书，其中80%是故事书，故事书有多少本？"])
    assert decon.contaminated_by("练习：学校买来120本书，其中80%是故事书，故事书有多少本？答案96") == ("math23k_test",)


def test_a_document_overlapping_several_sets_names_each_in_the_order_added():
    decon = Decontaminator(n=4)
    assert decon.add_eval_texts("b", ["one two three four five", "six"]) == (2, 1)  # "six" is shorter than n
    decon.add_eval_texts("a", ["two three four five six"])
    assert decon.contaminated_by("zero one two three four five") == ("b", "a")
    assert decon.contaminated_by("three four five six seven") == ("a",) and decon.contaminated_by("six") == ("b",)
