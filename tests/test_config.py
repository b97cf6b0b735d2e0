"""Every option of every config group composes, resolves, and instantiates what it names."""

from pathlib import Path

import hydra
import pytest
from omegaconf import OmegaConf

from minimath.config import StepBatch, batch_tokens, step_batch
from minimath.errors import UserError
from minimath.runs import variant_suffix
from minimath.training import (
    accumulation_steps,
    build_model_config,
    build_tokenizer,
    micro_batch_size,
    plan_run,
    world_size,
)

from conftest import CONF_DIR, SMALL_DATA_OVERRIDES, compose_config

GROUPS = ["model", "hardware", "data", "scheduler", "logger", "callbacks", "experiment", "hparams_search"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option, tmp_path):
    cfg = compose_config([f"{group}={option}"], tmp_path)
    OmegaConf.resolve(cfg)
    assert cfg.paths.output_dir == str(tmp_path)
    if group in ("scheduler", "logger"):
        assert hydra.utils.instantiate(cfg[group]) is not None
    if group == "callbacks":  # a null entry is a callback switched off (callbacks=quiet)
        assert all(hydra.utils.instantiate(c) is not None for c in cfg.callbacks.values() if c is not None)
    if group == "data":
        for name, source in cfg.data.sources.items():
            assert hydra.utils.instantiate(source, name=name).name == name
        for stage in cfg.data.stages.values():
            assert sum(entry.share for entry in stage.mix) == pytest.approx(1.0, abs=0.002)


def sweep_params(experiment: str) -> dict[str, list[str]]:
    path = CONF_DIR / "experiment" / f"{experiment}.yaml"
    params = (OmegaConf.load(path).get("hydra") or {}).get("sweeper", {}).get("params", {}) or {}
    return {key: [v.strip() for v in str(values).split(",")] for key, values in params.items()}


def experiment_arms() -> list[tuple[str, str, str]]:
    """(experiment, arm group, option) for every arm an experiment's sweep names (`+arm/<group>: a,b`)."""
    out = []
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        for key, values in sweep_params(path.stem).items():
            if key.startswith("+arm/"):
                out += [(path.stem, key[1:], v) for v in values]
    return out


@pytest.mark.parametrize("experiment,group,option", experiment_arms())
def test_every_arm_an_experiment_sweeps_exists_and_composes(experiment, group, option, tmp_path):
    """As the sweep's job composes it: this arm, the first value of every other swept key."""
    others = [f"{k}={v[0]}" for k, v in sweep_params(experiment).items() if k != f"+{group}"]
    cfg = compose_config([f"experiment={experiment}", f"+{group}={option}", *others], tmp_path)
    OmegaConf.resolve(cfg)
    assert plan_run(cfg).steps > 0


def test_every_arm_directory_is_swept_by_an_experiment():
    swept = {group for _, group, _ in experiment_arms()}
    assert {f"arm/{d.name}" for d in (CONF_DIR / "arm").iterdir() if d.is_dir()} == swept


def test_groups_have_options():
    assert all(options(g) for g in GROUPS)
    assert {"163K", "1.63M"} <= set(compose_config([], Path(".")).batch_sizes)
    assert {"nano", "small", "minimath_1p5b"} <= set(options("model"))


def test_stage_three_with_the_report_batch(tmp_path):
    cfg = compose_config(["stage=3", "batch=1.63M"], tmp_path)
    assert cfg.stage == "3" and step_batch(cfg).tokens_per_step == 1_638_400
    assert step_batch(compose_config(["batch=163K"], tmp_path)).tokens_per_step == 163_840


@pytest.mark.parametrize(
    "data,stage,name,tokens",
    [
        ("report", 1, "163K", 163_840),
        ("report", 2, "163K", 163_840),
        ("report", 3, "1.63M", 1_638_400),
        ("report", 4, "1.63M", 1_638_400),
        ("embedded", 2, "256", 256),
        ("embedded", 3, "2.5K", 2560),
    ],
)
def test_each_stage_brings_its_batch_with_a_10x_step_at_stage_3(data, stage, name, tokens, tmp_path):
    cfg = compose_config([f"data={data}", f"stage={stage}"], tmp_path)
    assert step_batch(cfg) == StepBatch(name, tokens)


def test_report_data_matches_the_report_charts(tmp_path):
    """Stage token budgets and the shares of earlier stages are the report's (MISSION.md); stage 4 takes all of stage 3
    (4.82B of 11.3B), which holds its replay of stages 1-2 (tests/data/test_report_layouts.py has the token counts)."""
    stages = compose_config(["data=report"], tmp_path).data.stages
    assert [float(stages[s].tokens) for s in "1234"] == [9.22e9, 10.12e9, 4.82e9, 11.3e9]
    assert [stages[s].epochs for s in "1234"] == [1, 1, 1, 2]
    retained = {s: {e.stage: e.share for e in stages[s].mix if "stage" in e} for s in "234"}
    assert retained == {"2": {1: 0.911}, "3": {1: 0.192, 2: 0.068}, "4": {3: 0.4265}}


SHIPPED_COMBINATIONS = (
    [("minimath_1p5b", b, h) for b in ("163K", "1.63M") for h in options("hardware")]
    + [("nano", b, h) for b in ("4K", "40K") for h in ("cpu", "gpu")]
    + [("nano", b, "cpu") for b in ("256", "512", "2.5K", "5K")]
)


@pytest.mark.parametrize("model,batch,hardware", SHIPPED_COMBINATIONS)
def test_shipped_batches_divide(model, batch, hardware, tmp_path):
    """The report's batches split into whole micro-batches on every hardware preset; the nano ones on one device."""
    cfg = compose_config([f"batch={batch}", f"hardware={hardware}", f"model={model}"], tmp_path)
    micro = micro_batch_size(cfg)
    steps = accumulation_steps(step_batch(cfg).tokens_per_step, micro, cfg.model.max_seq_len, world_size(cfg.hardware))
    assert steps * micro * cfg.model.max_seq_len * world_size(cfg.hardware) == step_batch(cfg).tokens_per_step


# Closed-form non-embedding counts: L·(4d² + 3·d·ffn + 2d) + d.
PRESET_PARAMS = {"minimath_1p5b": (1_208_035_328, 1_519_200_256), "small": (94_387_968, 211_074_816)}


@pytest.mark.parametrize("preset", sorted(PRESET_PARAMS))
def test_preset_parameter_counts(preset, tmp_path):
    from minimath.training import report_params

    cfg = compose_config([f"model={preset}"], tmp_path)
    model_config = build_model_config(cfg.model, build_tokenizer(cfg.model, manifest=None))
    counts = report_params(model_config)
    d, L, f = cfg.model.n_embd, cfg.model.n_layer, cfg.model.ffn_hidden
    assert counts["non_embedding"] == L * (4 * d * d + 3 * d * f + 2 * d) + d == PRESET_PARAMS[preset][0]
    assert counts["total"] == PRESET_PARAMS[preset][1]
    assert model_config.vocab_size == 151_936


def test_nano_is_a_few_million_params_on_a_compact_vocabulary(tmp_path, data_root):
    from minimath.data.prepare import prepare
    from minimath.training import report_params

    cfg = compose_config([f"paths.data_root={data_root}", *SMALL_DATA_OVERRIDES], tmp_path)
    tokenizer = build_tokenizer(cfg.model, prepare(cfg.data))
    model_config = build_model_config(cfg.model, tokenizer)
    assert tokenizer.vocab_size < 1000 and model_config.vocab_size % 64 == 0
    assert 1e6 < report_params(model_config)["non_embedding"] < 1e7


@pytest.mark.parametrize("group,option", [(g, o) for g in ("task", "protocol") for o in options(g)])
def test_every_eval_option_composes(group, option, tmp_path):
    from minimath.eval.modes import build_protocol, task_config

    cfg = compose_config(
        [f"{group}={option}", f"paths.eval_root={tmp_path}", "paths.output_dir=out"], tmp_path, config_name="eval"
    )
    expected = option if group == "protocol" else "standard"  # a task composes with the default protocol
    assert build_protocol(cfg).name == expected
    resolved = task_config(cfg, cfg.task.name)
    assert resolved.get("heldout") or str(resolved.path).startswith(str(tmp_path))


def test_numeric_stage_and_batch_values_compose_as_plain_keys(tmp_path):
    """`stage=3` and `batch=512` need no quoting: they are plain keys (the schema makes them strings)."""
    cfg = compose_config(["stage=3", "batch=512"], tmp_path)
    assert cfg.stage == "3" and step_batch(cfg) == StepBatch("512", 512)


def test_a_batch_name_gets_its_tokens_from_the_batch_sizes_table():
    sizes = {"2.5K": 2560, "1.63M": 1_638_400}
    assert batch_tokens("2.5K", sizes) == 2560 and batch_tokens("1.63M", sizes) == 1_638_400
    assert batch_tokens("3000", sizes) == 3000
    with pytest.raises(UserError, match="neither one of"):
        batch_tokens("huge", sizes)


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.max_tokens=abc", "train.max_tokens=abc: Value 'abc'"),
        ("resume=maybe", "expected one of [auto, never]"),
        ("seed=x", "seed=x: Value 'x'"),
        ("checkpoint.keep_last=some", "checkpoint.keep_last=some: Value 'some'"),
    ],
)
def test_the_schema_refuses_a_wrong_type_or_value_at_composition(override, message):
    from hydra.errors import ConfigCompositionException

    from minimath.config import composition_error

    with pytest.raises(ConfigCompositionException) as caught:
        compose_config([override], Path("."))
    assert message in composition_error(caught.value, "config")
    assert "\n" not in composition_error(caught.value, "config")


def test_a_wrong_stage_or_batch_is_one_line_naming_the_choices(tmp_path):
    with pytest.raises(UserError, match="stage=9 is not a stage of data=embedded .it has 1, 2, 3, 4"):
        step_batch(compose_config(["stage=9"], tmp_path))
    with pytest.raises(UserError, match="batch=huge is neither one of 163K, 1.63M"):
        step_batch(compose_config(["stage=3", "batch=huge"], tmp_path))


def test_a_renamed_key_points_to_its_new_name():
    from hydra.errors import ConfigCompositionException

    from minimath.config import composition_error

    with pytest.raises(ConfigCompositionException) as caught:
        compose_config(["scheduler.decay_from=/x.ckpt"], Path("."))
    assert composition_error(caught.value, "config") == (
        "scheduler.decay_from was renamed: use branch_from=PATH (and scheduler.decay_tokens=N)"
    )


def test_run_directories_come_from_the_run_layout(tmp_path):
    from hydra import compose, initialize_config_dir

    from minimath.schema import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        one = compose(config_name="config", overrides=["stage=3"], return_hydra_config=True)
        whole = compose(config_name="config", overrides=[], return_hydra_config=True)
    assert one.hydra.run.dir == "outputs/nano-embedded/stage3-bs2.5K" and one.hydra.sweep.subdir == "stage3-bs2.5K"
    assert whole.hydra.run.dir == "outputs/nano-embedded" and whole.stage == "all" and whole.batch == "stage"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        branch = compose(
            config_name="config",
            overrides=["stage=4", "scheduler=wsd", "branch_from=/x/step0000400.ckpt"],
            return_hydra_config=True,
        )
    wsd = variant_suffix(["scheduler=wsd"])  # the settings differ from the default run's; the branch is named
    assert wsd and branch.hydra.run.dir == f"outputs/nano-embedded/stage4-bs2.5K{wsd}-decay-step0000400"


def test_quiet_callbacks_drop_the_in_training_heldout_eval_and_keep_the_rest(tmp_path):
    from minimath.callbacks import Progress, TrainingMetrics
    from minimath.eval.callback import HeldoutEval
    from minimath.training import build_callbacks

    built = build_callbacks(compose_config(["callbacks=quiet"], tmp_path), ["basic_math"])
    assert not any(isinstance(c, HeldoutEval) for c in built)
    assert any(isinstance(c, TrainingMetrics) for c in built) and any(isinstance(c, Progress) for c in built)
    assert any(isinstance(c, HeldoutEval) for c in build_callbacks(compose_config([], tmp_path), ["basic_math"]))


WSD_ARMS = sorted(p.stem for p in (CONF_DIR / "arm" / "wsd_vs_cosine").glob("*.yaml"))
STEP = 2560  # the embedded stage 4's tokens per step


def wsd_arm(arm: str, tmp_path) -> tuple:
    """An arm of experiment=wsd_vs_cosine as its sweep job composes it: (config, its LR factor per step)."""
    overrides = ["experiment=wsd_vs_cosine", f"+arm/wsd_vs_cosine={arm}", "stage=4", "seed=1"]
    cfg = compose_config(overrides, tmp_path)
    tokens = int(cfg.train.max_tokens)
    schedule = hydra.utils.instantiate(cfg.scheduler, total_tokens=tokens, tokens_per_step=STEP)
    return cfg, [schedule(step * STEP) for step in range(tokens // STEP)], overrides


def test_wsd_vs_cosine_sweeps_every_arm_over_three_whole_curriculum_seeds(tmp_path):
    cfg = compose_config(["experiment=wsd_vs_cosine"], tmp_path, return_hydra=True)
    params = cfg.hydra.sweeper.params
    assert sorted(str(params["+arm/wsd_vs_cosine"]).split(",")) == WSD_ARMS
    assert str(params.seed) == "1,2,3" and str(params.stage) == "4"
    assert cfg.final_heldout is True and cfg.callbacks.heldout_eval is None


@pytest.mark.parametrize("arm", WSD_ARMS)
def test_wsd_vs_cosine_arms_are_the_schedules_they_name(arm, tmp_path):
    cfg, lr, overrides = wsd_arm(arm, tmp_path)
    assert lr[19] == pytest.approx(1.0) and lr[0] == pytest.approx(1 / 20)  # the same 20-step warmup in every arm
    if arm == "stable":
        assert len(lr) == 400 and lr[-1] == pytest.approx(1.0)
    elif arm == "cosine":
        assert len(lr) == 400 and lr[200] < 0.6 and lr[-1] == pytest.approx(0.1, abs=0.01)
    else:  # a 40-step exponential decay to 10% after a constant stretch: at the end (wsd10) or at step 160/240
        point = {"wsd10": 360, "branch160": 160, "branch240": 240}[arm]
        assert len(lr) == point + 40
        assert lr[point - 1] == pytest.approx(1.0) and lr[point] < 1.0 and lr[-1] == pytest.approx(0.1, rel=0.05)


def test_wsd_vs_cosine_arms_train_in_distinct_stage_directories(tmp_path):
    names = {variant_suffix(wsd_arm(arm, tmp_path)[2]) for arm in WSD_ARMS}
    assert len(names) == len(WSD_ARMS) and "" not in names


def averaging_arm(arm: str, tmp_path) -> tuple:
    """An arm of experiment=checkpoint_averaging as its job composes it: (config, its LR factor per step)."""
    cfg = compose_config(["experiment=checkpoint_averaging", f"+arm/checkpoint_averaging={arm}", "stage=4"], tmp_path)
    tokens = int(cfg.train.max_tokens)
    schedule = hydra.utils.instantiate(cfg.scheduler, total_tokens=tokens, tokens_per_step=STEP)
    return cfg, [schedule(step * STEP) for step in range(tokens // STEP)]


def test_checkpoint_averaging_decay_arm_shares_the_constant_arms_first_550_steps(tmp_path):
    constant, lr_constant = averaging_arm("constant", tmp_path)
    decay, lr_decay = averaging_arm("decay", tmp_path)
    assert len(lr_constant) == len(lr_decay) == 600 and lr_constant[:550] == lr_decay[:550]
    assert (
        lr_constant[-1] == pytest.approx(1.0) and lr_decay[550] < 1.0 and lr_decay[-1] == pytest.approx(0.1, rel=0.05)
    )
    assert constant.checkpoint.every_n_train_steps == 25 and constant.checkpoint.keep_last is None
    assert set(constant.final_merges) == {"avg2", "avg4", "avg8", "ema8"} and not decay.final_merges
    assert constant.final_stream_loss.first == 12000 == 600 * STEP // 128  # right after the sequences trained
