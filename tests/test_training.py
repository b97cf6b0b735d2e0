import logging
import subprocess
import sys

import pytest
import torch

from minimath.checkpoint import load_checkpoint
from minimath.errors import UserError
from minimath.tb import read_scalars as scalars
from minimath.training import (
    accumulation_steps,
    build_model_config,
    build_tokenizer,
    micro_batch_size,
    plan_run,
    run,
)

from conftest import REPO, SMALL_DATA_OVERRIDES, TINY_TRAIN_OVERRIDES, compose_config


def test_accumulation_is_derived_from_tokens_per_step():
    assert accumulation_steps(163_840, 8, 2048, 1) == 10
    assert accumulation_steps(1_638_400, 8, 2048, 1) == 100
    assert accumulation_steps(1_638_400, 16, 256, 1) == 400
    assert accumulation_steps(4096, 16, 256, 1) == 1


def test_indivisible_batch_is_a_user_error():
    with pytest.raises(UserError, match="not a multiple of micro_batch×seq_len×world_size = 3×256×1 = 768"):
        accumulation_steps(163_840, 3, 256, 1)


@pytest.mark.parametrize("batch,expected", [("256", 2), ("2.5K", 20), ("5K", 20), ("512", 4)])
def test_auto_micro_batch_is_the_largest_divisor_of_the_steps_sequences(tmp_path, batch, expected):
    cfg = compose_config([f"batch={batch}", "hardware=cpu"], tmp_path)  # 128-token sequences, at most 20
    assert micro_batch_size(cfg) == expected
    assert micro_batch_size(compose_config([f"batch={batch}", "hardware.micro_batch=2"], tmp_path)) == 2
    with pytest.raises(UserError, match="not a whole number of 128-token sequences"):
        micro_batch_size(compose_config(["batch=200"], tmp_path))


def test_vocab_smaller_than_tokenizer_is_a_user_error(tmp_path):
    cfg = compose_config(["model=small", "model.vocab_size=1000"], tmp_path)
    with pytest.raises(UserError, match="vocab_size=1000 is smaller"):
        build_model_config(cfg.model, build_tokenizer(cfg.model, manifest=None))


def test_bad_model_shape_is_a_user_error(tmp_path):
    cfg = compose_config(["model=small", "model.n_head=5"], tmp_path)
    with pytest.raises(UserError, match="not divisible by n_head"):
        build_model_config(cfg.model, build_tokenizer(cfg.model, manifest=None))


def test_compact_vocabulary_needs_prepared_data(tmp_path):
    cfg = compose_config([], tmp_path)
    with pytest.raises(UserError, match="needs prepared data"):
        build_tokenizer(cfg.model, manifest=None)


def test_dry_run_prints_counts(tmp_path, capsys):
    run(compose_config(["model=minimath_1p5b", "dry_run=true"], tmp_path))
    out = capsys.readouterr().out
    assert "params total=1519200256 non_embedding=1208035328" in out
    # the embedded data's 256-token batches do not hold one 2,048-token sequence: said per stage, not raised
    assert "stage 1: would stop with: error: batch of 256 tokens/step is not a whole number" in out
    assert not (tmp_path / "checkpoints").exists()


def test_a_four_node_fsdp_plan_of_the_report_accounts_for_every_rank(tmp_path, capsys):
    """hardware=fsdp hardware.num_nodes=4: 32 ranks of 8 GPUs planned (dry run, nothing allocated) for the report's
    curriculum. The 1.63M-token batch of stages 3-4 divides (5 sequences x 2,048 x 5 accumulation x 32 ranks); the
    163,840-token batch of stages 1-2 is 80 sequences of 2,048, which 32 ranks cannot split: said per stage."""
    run(compose_config(["model=minimath_1p5b", "data=report", "hardware=fsdp", "hardware.num_nodes=4", "stage=all",
                        "dry_run=true"], tmp_path))  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("device gpu x 32") == 2
    assert out.count("1,638,400 tokens/step = 5 sequences x 2048 tokens x 5 accumulation x 32 rank(s)") == 2
    for stage in (1, 2):
        assert (
            f"stage {stage}: would stop with: error: batch of 163840 tokens/step is not a multiple of "
            "micro_batch×seq_len×world_size = 5×2048×32 = 327680"
        ) in out
    # two nodes (16 ranks) split stages 1-2's batch: a micro-batch of 5 sequences per rank, no accumulation
    run(compose_config(["model=minimath_1p5b", "data=report", "hardware=fsdp", "hardware.num_nodes=2", "stage=1",
                        "dry_run=true"], tmp_path / "two"))  # fmt: skip
    assert "163,840 tokens/step = 5 sequences x 2048 tokens x 1 accumulation x 16 rank(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_tiny_run_writes_checkpoint_and_events_and_init_from(tmp_path, data_root):
    tiny = TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}"]
    out = tmp_path / "first"
    run(compose_config(tiny + ["checkpoint.every_n_train_steps=2"], out))
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4 and ckpt["tokens_seen"] == 512
    assert list((out / "tb").glob("events.out.tfevents.*"))

    # the weights seed a second run; a different architecture is refused in one line
    second = tmp_path / "second"
    run(compose_config(tiny + [f"init_from={out / 'checkpoints' / 'last.ckpt'}", "train.max_tokens=128"], second))
    assert load_checkpoint(second / "checkpoints" / "last.ckpt")["global_step"] == 1
    wider = [o if not o.startswith("model.n_embd") else "model.n_embd=64" for o in tiny]
    with pytest.raises(UserError, match="different architecture .*n_embd|different architecture"):
        run(compose_config(wider + [f"init_from={out / 'checkpoints' / 'last.ckpt'}"], tmp_path / "third"))


def test_truncated_foreign_missing_and_directory_checkpoints_are_one_line_errors(tmp_path):
    (tmp_path / "trunc.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="truncated or not a MiniMATH checkpoint"):
        load_checkpoint(tmp_path / "trunc.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.ckpt")
    with pytest.raises(UserError, match="not a MiniMATH Lightning checkpoint"):
        load_checkpoint(tmp_path / "foreign.ckpt")
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.ckpt")
    (tmp_path / "stage1-bs256" / "checkpoints").mkdir(parents=True)
    with pytest.raises(UserError, match=f"stage1-bs256 is a directory: pass {tmp_path}/stage1-bs256/checkpoints/final"):
        load_checkpoint(tmp_path / "stage1-bs256")


def run_cli(script: str, *args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_train_py_end_to_end(tmp_path, data_root):
    result = run_cli("train.py", *TINY_TRAIN_OVERRIDES, f"paths.data_root={data_root}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["batch=163K", "hardware.micro_batch=3", "train.max_tokens=400000"],
            "error: batch of 163840 tokens/step is not a multiple",
        ),
        (["model.tokenizer=/nonexistent/vocab.tiktoken", "dry_run=true"], "error: vocabulary file"),
        (["init_from=/nonexistent.ckpt"], "error: checkpoint /nonexistent.ckpt does not exist"),
    ],
)
@pytest.mark.slow
def test_user_errors_are_one_line(args, message, tmp_path, data_root):
    result = run_cli(
        "train.py", "stage=1", *args, *SMALL_DATA_OVERRIDES, f"paths.data_root={data_root}", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message)


@pytest.mark.parametrize(
    "args,message",
    [
        (["model=nanoo"], "error: model=nanoo: no such option (one of gpt4l256, minimath_1p5b, nano, small)"),
        (["stage=5"], "error: stage=5 is not a stage of data=embedded (it has 1, 2, 3, 4; or stage=all)"),
        (
            ["stage=3", "batch=2M"],
            "error: batch=2M is neither one of 163K, 1.63M, 256, 2.5K, 512, 4K, 5K, 40K nor a number",
        ),
        (["train.lr=1e-3"], "error: train.lr is not a config key: did you mean optim.lr"),
        (["no_such_key=1"], "error: no_such_key is not a config key (to add a new key: +no_such_key=...)"),
        (["stage=1", "train.max_tokens=abc"], "error: train.max_tokens=abc: Value 'abc' of type 'str' is incompatible"),
        (["stage=1", "train.max_tokens=1.5"], "error: train.max_tokens=1.5 is not a positive whole number of tokens"),
        (["stage=1", "train.max_tokens=-5"], "error: train.max_tokens=-5 is not a positive whole number of tokens"),
    ],
)
@pytest.mark.slow
def test_composition_and_value_errors_are_one_line_exit_2_and_leave_no_directory(args, message, tmp_path):
    out = tmp_path / "stage"
    result = run_cli("train.py", *args, f"hydra.run.dir={out}")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(message) and not out.exists()


def train_recording_dtypes(cfg, monkeypatch) -> dict[str, list]:
    """`run(cfg)`, recording in every training step whether CPU autocast was on (and its dtype) and the dtype of
    each of the model's nn.Linear outputs (q, k, v, o and the SwiGLU's three, per layer)."""
    from minimath.lit_module import MiniMathModule

    seen = {"autocast": [], "linear": []}
    training_step = MiniMathModule.training_step

    def record(module, inputs, output):
        seen["linear"].append(output.dtype)

    def recording_step(self, batch, batch_idx):
        seen["autocast"].append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        hooks = [m.register_forward_hook(record) for m in self.model.modules() if isinstance(m, torch.nn.Linear)]
        try:
            return training_step(self, batch, batch_idx)
        finally:
            for hook in hooks:
                hook.remove()

    with monkeypatch.context() as patch:
        patch.setattr(MiniMathModule, "training_step", recording_step)
        run(cfg)
    return seen


@pytest.mark.slow
def test_bf16_mixed_precision_trains_on_cpu(tmp_path, data_root, monkeypatch):
    """bf16-mixed runs its matmuls in bf16 (autocast on, every linear layer's output bf16) on fp32 master weights,
    learns, and follows the fp32 run of the same seed, data and model within bf16's rounding."""
    overrides = TINY_TRAIN_OVERRIDES + [
        f"paths.data_root={data_root}",
        "train.max_tokens=1280",  # 10 steps of one 4 x 32 micro-batch
        "optim.lr=1e-2",
        "callbacks.heldout_eval.n=2",
        "callbacks.heldout_eval.max_new_tokens=4",
        "hardware.peak_tflops=null",  # no emulated-bf16 peak probe
    ]
    runs = {}
    for precision in ("bf16-mixed", "32-true"):
        out = tmp_path / precision
        cfg = compose_config([*overrides, f"hardware.precision={precision}"], out)
        assert plan_run(cfg).precision == precision
        seen = train_recording_dtypes(cfg, monkeypatch)
        runs[precision] = (seen, load_checkpoint(out / "checkpoints" / "final.ckpt"), scalars(out / "tb", "train/loss"))

    (seen, ckpt, losses), (seen32, ckpt32, losses32) = runs["bf16-mixed"], runs["32-true"]
    linears_per_step = 2 * 7  # 2 layers x (wq, wk, wv, wo, w1, w2, w3)
    assert seen["autocast"] == [torch.bfloat16] * 10 and seen["linear"] == [torch.bfloat16] * 10 * linears_per_step
    assert seen32["autocast"] == [None] * 10 and seen32["linear"] == [torch.float32] * 10 * linears_per_step
    # fp32 master weights, all finite
    assert ckpt["state_dict"] and all(v.dtype == torch.float32 for v in ckpt["state_dict"].values())
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    # it learns: measured here, the loss falls from 6.80 (ln 896, the compact vocabulary: a fresh model's) to 6.26
    # over the 10 steps, in both precisions; 0.3 is the margin asserted
    assert list(losses) == list(losses32) == [128 * i for i in range(1, 11)]
    first, last = losses[128], losses[1280]
    assert last < first - 0.3, (first, last)
    # and follows fp32 step for step: measured here, the per-step losses of the two runs differ by 1.5e-4 at the
    # first step (the same initial model, forward rounding alone) and by at most 2.5e-4 over the 10 steps; 0.01
    # leaves 40x room for other CPUs' kernels, while a bf16 run that stopped learning would be ~0.5 off by the end.
    # Not 0: bf16 rounding happened (the two runs are not the same fp32 computation)
    gap = max(abs(losses[t] - losses32[t]) for t in losses32)
    assert 0 < gap <= 0.01, {t: (losses[t], losses32[t]) for t in losses}
    assert ckpt["last_loss"] == pytest.approx(ckpt32["last_loss"], abs=0.01)


def test_dry_run_prints_each_stages_plan_without_training(tmp_path, data_root, capsys):
    run(compose_config([f"paths.data_root={data_root}", *SMALL_DATA_OVERRIDES, "dry_run=true", "stage=all"], tmp_path))
    out = capsys.readouterr().out
    assert out.count("precision 32-true") + out.count("precision bf16-mixed") == 4  # one block per stage
    assert "2,560 tokens/step = 20 sequences x 128 tokens x 1 accumulation x 1 rank(s)" in out
    assert "steps = " in out and not (tmp_path / "checkpoints").exists()


BAD_INPUTS = [
    (["hardware=gpu"], "error: hardware.accelerator=gpu, but torch sees no CUDA GPU", True),
    (["+trainer.max_steps=5"], "error: trainer.max_steps is set by the run: use train.max_tokens", True),
    (["batch=163K", "train.max_tokens=null"], "error: batch 163K is 163,840 tokens/step, more than the", True),
    (["~data.clean"], "error: config", False),
    (
        ["model.max_seq_len=4096", "hardware.micro_batch=1", "batch=4096"],
        "error: source general_en has no shard of 4097 tokens",
        False,
    ),
]


@pytest.mark.parametrize("args,message,needs_gpu_free", BAD_INPUTS)
@pytest.mark.slow
def test_bad_inputs_are_one_line_and_exit_2(args, message, needs_gpu_free, tmp_path, data_root):
    if needs_gpu_free and torch.cuda.is_available() and args == ["hardware=gpu"]:
        pytest.skip("this machine has a GPU")
    out = tmp_path / "stage"
    short = "4097" in message  # a source smaller than one sequence: its own tiny data
    data = (
        ["data.sources.general_en.documents_count=3", f"paths.data_root={tmp_path / 'data'}"]
        if short
        else [f"paths.data_root={data_root}"]
    )
    result = run_cli("train.py", "stage=1", *SMALL_DATA_OVERRIDES, *data, f"hydra.run.dir={out}", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(message) and "Traceback" not in result.stderr
    assert not out.exists()  # a run that failed before training leaves no stage directory


def test_a_random_bytes_checkpoint_is_refused_without_unsafe_advice(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UserError, match="truncated or not a MiniMATH checkpoint") as err:
        load_checkpoint(junk)
    assert "weights_only=False" not in str(err.value) and "\n" not in str(err.value)


def test_a_stage_brings_its_own_schedule_settings_where_the_schedule_has_them(tmp_path, caplog):
    from minimath.schedules import WSD, Cosine

    caplog.set_level(logging.INFO, logger="minimath")
    from minimath.training import stage_scheduler

    own = ["+data.stages.4.scheduler={decay_fraction: 0.5}"]
    cfg = compose_config(["stage=4", *own], tmp_path)
    stage4 = hydra_instantiate(stage_scheduler(cfg, "4"), total_tokens=1000, tokens_per_step=10)
    stage3 = hydra_instantiate(stage_scheduler(cfg, "3"), total_tokens=1000, tokens_per_step=10)
    assert isinstance(stage4, WSD) and (stage4.decay_tokens, stage3.decay_tokens) == (500, 250)
    assert "stage 4's own decay_fraction=0.5" in caplog.text
    cosine = compose_config(["stage=4", "scheduler=cosine", *own], tmp_path)
    assert isinstance(hydra_instantiate(stage_scheduler(cosine, "4"), total_tokens=1000, tokens_per_step=10), Cosine)
    assert "data.stages.4.scheduler.decay_fraction not used by Cosine" in caplog.text


def hydra_instantiate(cfg, **kwargs):
    import hydra

    return hydra.utils.instantiate(cfg, **kwargs)


def test_final_heldout_evaluates_a_single_stage_into_heldout_json_once(tmp_path, data_root, capsys):
    import json

    from minimath.training import run as train_run

    overrides = TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}", "final_heldout=true", "curriculum_eval_items=4"]
    out = tmp_path / "stage"
    train_run(compose_config(overrides, out))
    stored = json.loads((out / "heldout.json").read_text())
    assert stored["key"]["items"] == 4 and stored["row"]["stage"] == 1 and stored["row"]["tokens_seen"] == 512
    assert {"arithmetic", "equations", "word_problems"} <= set(stored["row"])
    assert all(0.0 <= stored["row"][k] <= 1.0 for k in ("arithmetic", "equations", "word_problems"))
    assert "| 1 | 128 | 512 |" in capsys.readouterr().out  # the row, printed
    before = (out / "heldout.json").stat().st_mtime_ns
    train_run(compose_config(overrides, out))  # finished and evaluated: neither trains nor evaluates again
    assert (out / "heldout.json").stat().st_mtime_ns == before


def test_objective_is_the_mean_of_the_last_logged_values_and_says_when_it_cannot_be(tmp_path):
    import math

    from torch.utils.tensorboard import SummaryWriter

    from minimath.training import objective_value

    with SummaryWriter(str(tmp_path / "tb")) as w:
        for step, v in enumerate([9.0, 9.0, 1.0, 2.0, 3.0]):
            w.add_scalar("train/loss", v, step)
    cfg = compose_config(["stage=3", "hparams_search=wind_tunnel_lr"], tmp_path)  # objective: train/loss, tail 10
    cfg.objective.tail = 3
    assert objective_value(cfg) == pytest.approx(2.0)
    cfg.objective.tail = 6
    with pytest.raises(UserError, match="5 logged values .* fewer than 6"):
        objective_value(cfg)
    cfg.objective.tail, cfg.stage = 3, "all"
    with pytest.raises(UserError, match="stage=N"):
        objective_value(cfg)
    with SummaryWriter(str(tmp_path / "tb"), filename_suffix=".diverged") as w:
        w.add_scalar("train/loss", float("inf"), 5)
    cfg.stage = "3"
    assert math.isnan(objective_value(cfg))  # a diverged run: nan, which Optuna records as a failed trial


def test_final_merges_and_stream_loss_go_to_results_json(tmp_path, data_root):
    import json

    import torch

    from minimath.checkpoint import load_checkpoint
    from minimath.eval.stream import mean_loss, stream_windows
    from minimath.training import run as train_run

    overrides = TINY_TRAIN_OVERRIDES + [
        f"paths.data_root={data_root}",
        "final_heldout=true",
        "curriculum_eval_items=2",
        "checkpoint.every_n_train_steps=1",
        "checkpoint.keep_last=null",
        "final_merges={avg2:{last:2},ema3:{last:3,ema:0.5}}",
        "final_stream_loss={first:16,count:4}",
    ]
    out = tmp_path / "stage"
    cfg = compose_config(overrides, out)
    train_run(cfg)
    results = json.loads((out / "results.json").read_text())
    assert {"avg2/arithmetic", "ema3/equations", "stream_loss/final", "stream_loss/avg2", "stream_loss/ema3"} <= set(
        results
    )
    steps = sorted((out / "checkpoints").glob("step*.ckpt"))
    assert [p.name for p in steps[-2:]] == ["step0000003.ckpt", "step0000004.ckpt"]  # 512 tokens / 128 per step
    a, b = (load_checkpoint(p)["state_dict"] for p in steps[-2:])
    merged = load_checkpoint(out / "merged" / "avg2.ckpt")["state_dict"]
    assert all(torch.allclose(merged[k], (a[k].float() + b[k].float()) / 2) for k in merged)
    windows, tokenizer = stream_windows(cfg, 16, 4)  # sequences 16-19: after the 16 the stage trained on
    assert results["stream_loss/final"] == mean_loss(out / "checkpoints" / "final.ckpt", windows, tokenizer)
    assert len({results[f"stream_loss/{n}"] for n in ("final", "avg2", "ema3")}) == 3


def test_a_merge_of_more_checkpoints_than_the_stage_kept_is_one_line(tmp_path, data_root):
    from minimath.training import run as train_run

    overrides = TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}", "final_merges={avg8:{last:8}}"]
    with pytest.raises(UserError, match="final_merges.avg8: merging the last 8 step checkpoints, but .* kept 0"):
        train_run(compose_config(overrides, tmp_path / "stage"))


def test_stream_loss_refuses_positions_past_the_first_epoch(tmp_path, data_root):
    from minimath.eval.stream import stream_windows

    cfg = compose_config(TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}"], tmp_path)
    with pytest.raises(UserError, match="run past the stage's epoch"):
        stream_windows(cfg, 0, 10**7)
