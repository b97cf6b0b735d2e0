import pytest

from minimath import curriculum


@pytest.mark.parametrize("overrides,expected", [([], True), (["model=nano"], True), (["stage=all"], True),
                                                (["stage=3", "batch=1.63M"], False), (["stage='2'"], False)])
def test_the_curriculum_runs_when_stage_is_all(overrides, expected, tmp_path):
    """Decided by the composed value of `stage`, the default being all."""
    from conftest import compose_config

    assert curriculum.wants_curriculum(compose_config(overrides, tmp_path)) is expected


def test_table():
    rows = [{"stage": 4, "batch": "5K", "tokens_seen": 2_000_000, "final_loss": 1.234, "arithmetic": 0.5,
             "arithmetic[/]": 0.0, "arithmetic[+]": 1.0, "equations": 0.25, "word_problems": 0.125},
            {"stage": 3, "batch": "5K", "tokens_seen": 1_000_000, "final_loss": 2.5, "arithmetic": 0.0,
             "equations": 0.0, "word_problems": 0.0}]
    lines = curriculum.table(rows).splitlines()
    assert lines[0] == "| stage | batch | tokens seen | final loss | arithmetic | + | / | equations | word_problems |"
    assert lines[2] == "| 4 | 5K | 2,000,000 | 1.234 | 50.0% | 100.0% | 0.0% | 25.0% | 12.5% |"
    assert lines[3] == "| 3 | 5K | 1,000,000 | 2.500 | 0.0% | - | - | 0.0% | 0.0% |"
