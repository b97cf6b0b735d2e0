import json

from minimath.data.decontaminate import Decontaminator, units


def test_units_split_cjk_by_character():
    assert units("小明有12个苹果, he ate 3.5") == ["小", "明", "有", "12", "个", "苹", "果", "he", "ate", "3.5"]


def test_planted_test_item_is_removed(tmp_path):
    test_item = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
    (tmp_path / "test.jsonl").write_text(json.dumps({"question": test_item, "answer": "#### 72"}) + "\n")
    decon = Decontaminator(n=8)
    decon.add_eval_file("gsm8k_test", str(tmp_path / "test.jsonl"), ["question"])
    planted = "Some preamble. " + test_item.upper() + " More text after it."
    assert decon.contaminated_by(planted) == "gsm8k_test"
    assert decon.contaminated_by("Natalia sold clips to friends; an unrelated question about May.") is None
    assert decon.removed == {"gsm8k_test": 1}


def test_chinese_items_match_on_characters():
    decon = Decontaminator(n=10)
    decon.add_eval_texts("math23k_test", ["学校买来120本书，其中80%是故事书，故事书有多少本？"])
    assert decon.contaminated_by("练习：学校买来120本书，其中80%是故事书，故事书有多少本？答案96") == "math23k_test"
