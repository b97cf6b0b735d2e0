import pytest

from minimath import curriculum


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ([], True),
        (["model=nano"], True),
        (["stage=all"], True),
        (["stage=3", "batch=1.63M"], False),
        (["stage='2'"], False),
    ],
)
def test_the_curriculum_runs_when_stage_is_all(overrides, expected, tmp_path):
    """Decided by the composed value of `stage`, the default being all."""
    from conftest import compose_config

    assert curriculum.wants_curriculum(compose_config(overrides, tmp_path)) is expected


def test_table():
    rows = [
        {
            "stage": 4,
            "batch": "5K",
            "tokens_seen": 2_000_000,
            "final_loss": 1.234,
            "arithmetic": 0.5,
            "arithmetic[/]": 0.0,
            "arithmetic[+]": 1.0,
            "equations": 0.25,
            "word_problems": 0.125,
        },
        {
            "stage": 3,
            "batch": "5K",
            "tokens_seen": 1_000_000,
            "final_loss": 2.5,
            "arithmetic": 0.0,
            "equations": 0.0,
            "word_problems": 0.0,
        },
    ]
    lines = curriculum.table(rows).splitlines()
    assert lines[0] == "| stage | batch | tokens seen | final loss | arithmetic | + | / | equations | word_problems |"
    assert lines[2] == "| 4 | 5K | 2,000,000 | 1.234 | 50.0% | 100.0% | 0.0% | 25.0% | 12.5% |"
    assert lines[3] == "| 3 | 5K | 1,000,000 | 2.500 | 0.0% | - | - | 0.0% | 0.0% |"


def test_config_location_flags_reach_every_stage(monkeypatch, tmp_path):
    """From Hydra's record of the run (a joblib worker's sys.argv is not the command's)."""
    from types import SimpleNamespace

    from hydra.core.hydra_config import HydraConfig

    script = tmp_path / "train.py"
    (tmp_path / "conf").mkdir()
    sources = [
        SimpleNamespace(provider="hydra", path="hydra.conf"),
        SimpleNamespace(provider="main", path=str(tmp_path / "conf")),
        SimpleNamespace(provider="command-line", path="/x"),
        SimpleNamespace(provider="schema", path=""),
    ]
    record = SimpleNamespace(runtime=SimpleNamespace(config_sources=sources), job=SimpleNamespace(config_name="config"))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: record))
    assert curriculum.config_arguments(str(script)) == ["--config-dir", "/x"]
    sources[1].path, record.job.config_name = "file:///elsewhere/conf", "other"
    assert curriculum.config_arguments(str(script)) == [
        "--config-path",
        "/elsewhere/conf",
        "--config-dir",
        "/x",
        "--config-name",
        "other",
    ]


@pytest.mark.slow
def test_a_curriculum_from_a_user_config_dir_then_other_settings_train_their_own_stages(tmp_path, data_root):
    """`python train.py --config-dir DIR data=mine`: DIR's data config reaches each stage process. The README's
    training-dynamics command after it trains new stages and prints their table only; rerunning the first command
    starts no stage and evaluates nothing (the stored results)."""
    import subprocess
    import sys

    from omegaconf import OmegaConf

    from minimath.runs import variant_suffix

    from conftest import REPO, SMALL_DATA_OVERRIDES, TINY_TRAIN_OVERRIDES

    mine = OmegaConf.load(REPO / "conf" / "data" / "embedded.yaml")
    mine.name = "mine"
    mine.stages = {"1": mine.stages["1"], "2": mine.stages["2"]}
    (tmp_path / "conf" / "data").mkdir(parents=True)
    OmegaConf.save(mine, tmp_path / "conf" / "data" / "mine.yaml")
    overrides = (
        [o for o in TINY_TRAIN_OVERRIDES if o != "stage=1"]
        + SMALL_DATA_OVERRIDES
        + ["train.max_tokens=256", f"paths.data_root={tmp_path / 'data'}", "callbacks.heldout_eval.n=1"]
    )
    dynamics = ["model.mup=true", "model.qk_norm=true", "train.z_loss=1e-4", "callbacks=monitored"]

    def curriculum(*extra):
        result = subprocess.run(
            [
                sys.executable,
                "train.py",
                "--config-dir",
                str(tmp_path / "conf"),
                "data=mine",
                *overrides,
                *extra,
                f"paths.runs={tmp_path / 'runs'}",
                "curriculum_eval_items=2",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result

    first = curriculum()
    run, v1, v2 = tmp_path / "runs" / "nano-mine", variant_suffix(overrides), variant_suffix(overrides + dynamics)
    assert sorted(p.name for p in run.glob("stage*")) == [f"stage1-bs128{v1}", f"stage2-bs128{v1}"]
    assert (run / f"curriculum{v1}.md").is_file() and "| 2 | 128 |" in first.stdout
    assert first.stdout.strip().splitlines()[-1].startswith(f"written to {run / f'curriculum{v1}.md'}")

    second = curriculum(*dynamics)
    assert sorted(p.name for p in run.glob(f"stage*{v2}")) == [f"stage1-bs128{v2}", f"stage2-bs128{v2}"]
    assert "already finished" not in second.stdout
    assert second.stdout.count("| 1 | 128 |") == 1 and second.stdout.count("| 2 | 128 |") == 1  # its own stages
    assert f"curriculum{v2}.md" in second.stdout.strip().splitlines()[-1]

    again = curriculum()
    assert again.stdout.count("already finished") == 2 and "evaluating" not in again.stdout
    assert [line for line in again.stdout.splitlines() if line.startswith("|")] == [
        line for line in first.stdout.splitlines() if line.startswith("|")
    ]
