from minimath.cli import quote_numeric_choices


def test_numeric_stage_choices_are_quoted():
    assert quote_numeric_choices(["train.py", "stage=3", "batch=1.63M"]) == ["train.py", "stage='3'", "batch=1.63M"]
    assert quote_numeric_choices(["stage=1,2,3"]) == ["stage='1','2','3'"]
    assert quote_numeric_choices(["batch=512,5K", "batch=1.63M"]) == ["batch='512',5K", "batch=1.63M"]


def test_other_arguments_are_untouched():
    args = ["seed=3", "stage.id=3", "model=nano", "stage='3'", "train.max_tokens=100"]
    assert quote_numeric_choices(args) == args
