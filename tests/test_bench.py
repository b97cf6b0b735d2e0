import re
import subprocess
import sys
import time

import pytest
import torch
from hydra import compose, initialize_config_dir

from minimath.bench import train
from minimath.bench.train import bench_spec, model_config, reference_precision, report
from minimath.flops import flops_per_token

from conftest import CONF_DIR, REPO

TINY = [
    "model.n_layer=1",
    "model.n_embd=32",
    "model.n_head=2",
    "model.n_kv_head=2",
    "model.ffn_hidden=64",
    "micro_batch=2",
    "seq_len=16",
    "steps=2",
    "warmup=1",
    "vocab_size=500",
    "loss_chunk_bytes=16000",
    "hardware.peak_tflops=1",
    "repeats=1",
]
TOKENS = 2 * 16  # micro_batch x seq_len: the tokens of one timed step
# TINY's FLOPs per token, by hand: non-embedding parameters 4·32² (q, k, v, o) + 3·32·64 (SwiGLU) + 3·32 (two
# block norms and the final one) = 10,336; transformer 6·10,336 + 12·layers·heads·head_dim·seq_len
# (12·1·2·16·16 = 6,144) = 68,160; output layer 6·vocab·n_embd = 6·500·32 = 96,000
TRANSFORMER_FLOPS, OUTPUT_FLOPS = 68_160, 96_000
GIB = 2**30


def bench_config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="bench", overrides=overrides)


def record_measurements(monkeypatch) -> list[dict]:
    """Each variant's worker run as `report` received it (its JSON line), with the spec it was given and the wall
    seconds its whole subprocess took."""
    measured, measure = [], train.measure

    def timed(variant, spec):
        start = time.perf_counter()
        m = measure(variant, spec)
        measured.append({**m, "spec": spec, "wall_s": time.perf_counter() - start})
        return m

    monkeypatch.setattr(train, "measure", timed)
    return measured


def assert_figures_are_the_measured_ones(results, measured, tokens, timed_intervals):
    """tokens/s is the step's `tokens` over the worker's measured step time (the median, or the mean for `full`),
    the peak memory is the worker's, and those step times fit in the worker's wall time: they are real timings."""
    for variant, r in results.items():
        (m,) = [m for m in measured if m["variant"] == variant]
        step_s = m["mean_step_s"] if variant == "full" else m["median_step_s"]
        assert r["tokens_per_s"] == tokens / step_s
        assert r["tokens_per_s_each_run"] == [round(r["tokens_per_s"], 1)]
        assert r["peak_bytes"] == m["peak_bytes"] >= 0
        assert 0 < m["median_step_s"] and 0 < m["mean_step_s"] * timed_intervals[variant] < m["wall_s"]


def test_report_turns_the_workers_step_times_into_tokens_per_s_mfu_and_ratios(monkeypatch, capsys):
    """Hand-written worker measurements, three alternating runs of each variant: medians, maxima, MFU against the
    stated peak and the printed ratios, all worked out by hand."""
    step_s = {"reference": [0.04, 0.02, 0.08], "ours": [0.01, 0.016, 0.02]}  # 800/1600/400, 3200/2000/1600 tokens/s
    peaks = {"reference": [3 * GIB, 2 * GIB, 1 * GIB], "ours": [1 * GIB, GIB * 3 // 2, GIB // 2]}
    calls = []

    def fake_measure(variant, spec):
        i = sum(c == variant for c in calls)
        calls.append(variant)
        return {
            "variant": variant,
            "median_step_s": step_s[variant][i],
            "mean_step_s": 1.0,
            "peak_bytes": peaks[variant][i],
        }

    monkeypatch.setattr(train, "measure", fake_measure)
    cfg = bench_config([*TINY, "repeats=3", "hardware.peak_tflops=0.001", "hardware.precision=32-true"])
    flops = flops_per_token(model_config(bench_spec(cfg)), cfg.seq_len)
    assert (flops.transformer, flops.output_layer) == (TRANSFORMER_FLOPS, OUTPUT_FLOPS)
    results = report(cfg)
    out = capsys.readouterr().out
    assert calls == ["reference", "ours"] * 3  # alternating, so drift hits both alike
    ref, ours = results["reference"], results["ours"]
    assert ref["tokens_per_s_each_run"] == [800.0, 1600.0, 400.0] and ref["tokens_per_s"] == pytest.approx(800)
    assert ours["tokens_per_s_each_run"] == [3200.0, 2000.0, 1600.0] and ours["tokens_per_s"] == pytest.approx(2000)
    assert ref["peak_bytes"] == 3 * GIB and ours["peak_bytes"] == GIB * 3 // 2  # the largest run's
    # MFU = tokens/s x FLOPs per token / peak (1e9 FLOP/s): 2000 x 68,160 / 1e9, 2000 x 96,000 / 1e9, and both
    assert ours["mfu"] == pytest.approx(0.13632)
    assert ours["mfu_output_layer"] == pytest.approx(0.192)
    assert ours["mfu_total"] == pytest.approx(0.32832)
    assert (ref["mfu"], ref["mfu_output_layer"], ref["mfu_total"]) == pytest.approx((0.054528, 0.0768, 0.131328))
    lines = out.splitlines()
    assert (
        "reference:        800 tokens/s (median of [800.0, 1600.0, 400.0])  peak memory   3.00 GiB  MFU 5.5% "
        "(output layer 7.7%, total 13.1%)" in lines
    )
    assert (
        "     ours:      2,000 tokens/s (median of [3200.0, 2000.0, 1600.0])  peak memory   1.50 GiB  MFU 13.6% "
        "(output layer 19.2%, total 32.8%)" in lines
    )
    assert "ours/reference: 2.50x tokens/s, 0.50x peak memory" in lines  # 2000/800, 1.5 GiB / 3 GiB


def test_the_full_variants_figure_is_its_mean_step_the_others_their_median(monkeypatch, capsys):
    """`full` pays for what runs now and then between steps (eval, checkpoints): its mean step counts, not its median."""
    figures = {"reference": (0.04, 0.05), "ours": (0.02, 0.03), "full": (0.01, 0.064)}  # (median, mean) seconds

    def fake_measure(variant, spec):
        median, mean = figures[variant]
        return {"variant": variant, "median_step_s": median, "mean_step_s": mean, "peak_bytes": GIB}

    monkeypatch.setattr(train, "measure", fake_measure)
    results = report(bench_config([*TINY, "full=true", "hardware.precision=32-true"]))
    out = capsys.readouterr().out.splitlines()
    tokens_per_s = {variant: r["tokens_per_s"] for variant, r in results.items()}
    assert tokens_per_s == pytest.approx({"reference": 800, "ours": 1600, "full": 500})  # 32 / 0.04, 0.02, 0.064
    assert "ours/reference: 2.00x tokens/s, 1.00x peak memory" in out
    assert "full/reference: 0.62x tokens/s (the whole train.py step: callbacks, logging, data loading)" in out


@pytest.mark.slow
def test_benchmark_reports_both_variants_side_by_side(capsys, monkeypatch):
    """The real workers: the figures are the ones they measured, and the ratios printed are of those."""
    measured = record_measurements(monkeypatch)
    results = report(bench_config(TINY))
    out = capsys.readouterr().out
    assert [m["variant"] for m in measured] == ["reference", "ours"] and set(results) == {"reference", "ours"}
    assert_figures_are_the_measured_ones(results, measured, TOKENS, {"reference": 2, "ours": 2})  # steps=2 timed
    for r in results.values():
        # MFU is tokens/s × FLOPs per token over the stated peak (1 TFLOP/s here), per part and in total
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * TRANSFORMER_FLOPS / 1e12)
        assert r["mfu_output_layer"] == pytest.approx(r["tokens_per_s"] * OUTPUT_FLOPS / 1e12)
        assert r["mfu_total"] == pytest.approx(r["tokens_per_s"] * (TRANSFORMER_FLOPS + OUTPUT_FLOPS) / 1e12)
        assert f"{r['tokens_per_s']:,.0f} tokens/s" in out
    ours, ref = results["ours"], results["reference"]
    speed, memory = ours["tokens_per_s"] / ref["tokens_per_s"], ours["peak_bytes"] / ref["peak_bytes"]
    assert f"ours/reference: {speed:.2f}x tokens/s, {memory:.2f}x peak memory" in out


@pytest.mark.slow
def test_the_full_variant_times_the_whole_train_py_step(capsys, data_root, monkeypatch):
    """`full=true`: the training config's own run (stage 4 of the embedded data, its callbacks) at the bench's shape."""
    from conftest import SMALL_DATA_OVERRIDES

    overrides = [f"paths.data_root={data_root}", "callbacks.heldout_eval.n=1", *SMALL_DATA_OVERRIDES]
    cfg = bench_config(
        [
            "model=nano",
            "micro_batch=2",
            "seq_len=32",
            "steps=3",
            "warmup=1",
            "repeats=1",
            "full=true",
            "hardware.precision=32-true",
            "hardware.peak_tflops=1",
            f"full_overrides={overrides}",
        ]
    )
    measured = record_measurements(monkeypatch)
    results = report(cfg)
    out = capsys.readouterr().out
    assert set(results) == {"reference", "ours", "full"}
    assert [m["variant"] for m in measured] == ["reference", "ours", "full"]
    # 2 x 32 tokens a step; full's figure is the mean gap between the 3 timed steps' ends (2 intervals)
    assert_figures_are_the_measured_ones(results, measured, 2 * 32, {"reference": 3, "ours": 3, "full": 2})
    (full_spec,) = [m["spec"] for m in measured if m["variant"] == "full"]
    assert full_spec["full_overrides"] == overrides and full_spec["precision"] == "32-true"
    ratio = results["full"]["tokens_per_s"] / results["reference"]["tokens_per_s"]
    assert f"full/reference: {ratio:.2f}x tokens/s" in out


@pytest.mark.slow
def test_benchmark_runs_the_bf16_cpu_preset_against_a_bf16_reference(capsys, monkeypatch):
    cfg = bench_config([*TINY, "hardware=cpu_bf16", "reference_precision=bf16-mixed"])
    assert cfg.hardware.precision == "bf16-mixed"
    measured = record_measurements(monkeypatch)
    results = report(cfg)
    assert set(results) == {"ours", "reference"}  # full=false: the two isolated steps only
    # both workers were told to run bf16 autocast (ours: Lightning's bf16-mixed; reference: its autocast switch)
    assert [(m["variant"], m["spec"]["precision"], m["spec"]["reference_precision"]) for m in measured] == [
        ("reference", "bf16-mixed", "bf16-mixed"),
        ("ours", "bf16-mixed", "bf16-mixed"),
    ]
    assert_figures_are_the_measured_ones(results, measured, TOKENS, {"reference": 2, "ours": 2})
    header = capsys.readouterr().out.splitlines()[0]
    assert "ours: bf16-mixed" in header and "reference: bf16-mixed" in header


def test_reference_precision_auto_is_the_plain_step_of_the_device():
    assert reference_precision("auto", "cpu") == "32-true"
    assert reference_precision("auto", "gpu") == "bf16-mixed"
    with pytest.raises(SystemExit, match="reference_precision='fp8'"):
        reference_precision("fp8", "cpu")


def test_hf_generation_bench_prints_both_paths_and_their_ratio(capsys, monkeypatch):
    """`python -m minimath.bench.hf_generation`: the same tiny model through ckpt=PATH and ckpt=hf:DIR."""
    from minimath.bench import hf_generation

    monkeypatch.setattr("sys.argv", ["hf_generation", "--batch", "2", "--new-tokens", "4", "--repeats", "1"])
    hf_generation.main()
    out = capsys.readouterr().out
    assert "ckpt=nano.ckpt: NativeModel" in out and "ckpt=hf:nano-hf: HFCausalLM" in out
    rate = r"[\d,]+ \(best [\d,]+\)"
    assert re.search(rf"batch 2: ckpt=nano.ckpt {rate}, ckpt=hf:nano-hf {rate} tokens/s; hf / ours [\d.]+x", out)
    assert "identical continuations 2 of 2" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_bench_on_a_gpu_preset_without_a_gpu_is_a_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "minimath.bench", "model=nano", "hardware=gpu", "steps=1", "warmup=0", "repeats=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: hardware.accelerator=gpu, but torch sees no CUDA GPU on this machine: use hardware=cpu"
    ]
