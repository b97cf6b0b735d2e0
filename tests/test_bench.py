import pytest
from hydra import compose, initialize_config_dir

from minimath.bench.train import reference_precision, report

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
    for variant in ("ours", "reference"):
        assert results[variant]["tokens_per_s"] > 0 and results[variant]["peak_bytes"] > 0
        assert 0 < results[variant]["mfu"] and results[variant]["mfu_output_layer"] > 0
    assert "ours/reference:" in capsys.readouterr().out


@pytest.mark.slow
def test_benchmark_runs_the_bf16_cpu_preset_against_a_bf16_reference(capsys):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=[*TINY, "hardware=cpu_bf16", "reference_precision=bf16-mixed"])
    assert cfg.hardware.precision == "bf16-mixed"
    results = report(cfg)
    assert results["ours"]["tokens_per_s"] > 0 and results["reference"]["tokens_per_s"] > 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "ours: bf16-mixed" in header and "reference: bf16-mixed" in header


def test_reference_precision_auto_is_the_plain_step_of_the_device():
    assert reference_precision("auto", "cpu") == "32-true"
    assert reference_precision("auto", "gpu") == "bf16-mixed"
    with pytest.raises(SystemExit, match="reference_precision='fp8'"):
        reference_precision("fp8", "cpu")
