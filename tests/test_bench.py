import pytest
from hydra import compose, initialize_config_dir

from minimath.bench.train import bench_spec, model_config, reference_precision, report
from minimath.flops import flops_per_token

from conftest import CONF_DIR

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


@pytest.mark.slow
def test_benchmark_reports_both_variants_side_by_side(capsys):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=TINY)
    results = report(cfg)
    out = capsys.readouterr().out
    flops = flops_per_token(model_config(bench_spec(cfg)), cfg.seq_len)
    for variant in ("ours", "reference"):
        r = results[variant]
        assert (
            r["tokens_per_s"] > 0
            and r["peak_bytes"] > 0
            and r["tokens_per_s_each_run"] == [round(r["tokens_per_s"], 1)]
        )
        # MFU is tokens/s × FLOPs per token over the stated peak (1 TFLOP/s here), per part and in total
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * flops.transformer / 1e12)
        assert r["mfu_output_layer"] == pytest.approx(r["tokens_per_s"] * flops.output_layer / 1e12)
        assert r["mfu_total"] == pytest.approx(r["mfu"] + r["mfu_output_layer"])
        assert f"{r['tokens_per_s']:,.0f} tokens/s" in out
    ratio = results["ours"]["tokens_per_s"] / results["reference"]["tokens_per_s"]
    assert f"ours/reference: {ratio:.2f}x tokens/s" in out


@pytest.mark.slow
def test_the_full_variant_times_the_whole_train_py_step(capsys, data_root):
    """`full=true`: the training config's own run (stage 4 of the embedded data, its callbacks) at the bench's shape."""
    from conftest import SMALL_DATA_OVERRIDES

    overrides = [f"paths.data_root={data_root}", "callbacks.heldout_eval.n=1", *SMALL_DATA_OVERRIDES]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="bench",
            overrides=[
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
            ],
        )
    results = report(cfg)
    out = capsys.readouterr().out
    assert set(results) == {"reference", "ours", "full"} and results["full"]["tokens_per_s"] > 0
    ratio = results["full"]["tokens_per_s"] / results["reference"]["tokens_per_s"]
    assert f"full/reference: {ratio:.2f}x tokens/s" in out


@pytest.mark.slow
def test_benchmark_runs_the_bf16_cpu_preset_against_a_bf16_reference(capsys):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=[*TINY, "hardware=cpu_bf16", "reference_precision=bf16-mixed"])
    assert cfg.hardware.precision == "bf16-mixed"
    results = report(cfg)
    assert results["ours"]["tokens_per_s"] > 0 and results["reference"]["tokens_per_s"] > 0
    assert set(results) == {"ours", "reference"}  # full=false: the two isolated steps only
    header = capsys.readouterr().out.splitlines()[0]
    assert "ours: bf16-mixed" in header and "reference: bf16-mixed" in header


def test_reference_precision_auto_is_the_plain_step_of_the_device():
    assert reference_precision("auto", "cpu") == "32-true"
    assert reference_precision("auto", "gpu") == "bf16-mixed"
    with pytest.raises(SystemExit, match="reference_precision='fp8'"):
        reference_precision("fp8", "cpu")
