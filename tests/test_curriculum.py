import pytest

from minimath import curriculum


@pytest.mark.parametrize("overrides,setting,expected", [
    ([], "auto", True), (["model=nano"], "auto", True), (["stage=3", "batch=1.63M"], "auto", False),
    (["stage='2'"], "auto", False), ([], False, False)])
def test_the_curriculum_runs_unless_a_stage_is_chosen(monkeypatch, overrides, setting, expected):
    from omegaconf import OmegaConf

    monkeypatch.setattr(curriculum, "command_line_overrides", lambda: overrides)
    assert curriculum.wants_curriculum(OmegaConf.create({"curriculum": setting})) is expected


def test_table():
    rows = [{"stage": 4, "batch": "5K", "tokens_seen": 2_000_000, "final_loss": 1.234, "arithmetic": 0.5,
             "arithmetic[/]": 0.0, "arithmetic[+]": 1.0, "equations": 0.25, "word_problems": 0.125},
            {"stage": 3, "batch": "5K", "tokens_seen": 1_000_000, "final_loss": 2.5, "arithmetic": 0.0,
             "equations": 0.0, "word_problems": 0.0}]
    lines = curriculum.table(rows).splitlines()
    assert lines[0] == "| stage | batch | tokens seen | final loss | arithmetic | + | / | equations | word_problems |"
    assert lines[2] == "| 4 | 5K | 2,000,000 | 1.234 | 50.0% | 100.0% | 0.0% | 25.0% | 12.5% |"
    assert lines[3] == "| 3 | 5K | 1,000,000 | 2.500 | 0.0% | - | - | 0.0% | 0.0% |"
