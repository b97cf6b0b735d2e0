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


def test_config_location_flags_reach_every_stage():
    argv = ["--config-dir", "/x", "data=mine", "-cn=other", "stage=all", "--config-path", "y", "seed=2"]
    assert curriculum.config_arguments(argv) == ["--config-dir", "/x", "-cn=other", "--config-path", "y"]


def test_a_curriculum_from_a_user_config_dir(tmp_path, data_root):
    """`python train.py --config-dir DIR data=mine`: DIR's data config reaches each stage process."""
    import subprocess
    import sys

    from conftest import REPO, SMALL_DATA_OVERRIDES, TINY_TRAIN_OVERRIDES
    from omegaconf import OmegaConf

    mine = OmegaConf.load(REPO / "conf" / "data" / "embedded.yaml")
    mine.name = "mine"
    mine.stages = {"1": mine.stages["1"], "2": mine.stages["2"]}
    (tmp_path / "conf" / "data").mkdir(parents=True)
    OmegaConf.save(mine, tmp_path / "conf" / "data" / "mine.yaml")
    overrides = [o for o in TINY_TRAIN_OVERRIDES if o != "stage=1"] + SMALL_DATA_OVERRIDES
    result = subprocess.run([sys.executable, "train.py", "--config-dir", str(tmp_path / "conf"), "data=mine",
                             *overrides, "train.max_tokens=256", f"paths.runs={tmp_path / 'runs'}",
                             f"paths.data_root={tmp_path / 'data'}", "curriculum_eval_items=2",
                             "callbacks.heldout_eval.n=1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "runs" / "nano-mine"
    assert sorted(p.name for p in run.glob("stage*")) == ["stage1-bs256", "stage2-bs256"]
    assert (run / "curriculum.md").is_file() and "| 2 | 256 |" in result.stdout
