import subprocess
import sys

import pytest
import torch

from conftest import REPO, SMALL_DATA_OVERRIDES, TINY_TRAIN_OVERRIDES, compose_config
from minimath.checkpoint import load_checkpoint
from minimath.errors import UserError
from minimath.training import accumulation_steps, build_model_config, build_tokenizer, micro_batch_size, run


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
        micro_batch_size(compose_config(["batch.tokens_per_step=200"], tmp_path))


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
    assert "params total=1519200256 non_embedding=1208035328" in capsys.readouterr().out
    assert not (tmp_path / "checkpoints").exists()


def test_tiny_run_writes_checkpoint_and_events_and_init_from(tmp_path, data_root):
    tiny = TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}"]
    out = tmp_path / "first"
    run(compose_config(tiny + ["callbacks.checkpoint.every_n_train_steps=2"], out))
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


def test_truncated_and_foreign_checkpoints(tmp_path):
    (tmp_path / "trunc.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="truncated or not a MiniMATH checkpoint"):
        load_checkpoint(tmp_path / "trunc.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.ckpt")
    with pytest.raises(UserError, match="not a MiniMATH Lightning checkpoint"):
        load_checkpoint(tmp_path / "foreign.ckpt")
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.ckpt")


def run_cli(script: str, *args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_train_py_end_to_end(tmp_path, data_root):
    result = run_cli("train.py", *TINY_TRAIN_OVERRIDES, f"paths.data_root={data_root}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize("args,message", [
    (["batch=163K", "hardware.micro_batch=3"], "error: batch of 163840 tokens/step is not a multiple"),
    (["model.tokenizer=/nonexistent/vocab.tiktoken", "dry_run=true"], "error: vocabulary file"),
    (["init_from=/nonexistent.ckpt"], "error: checkpoint /nonexistent.ckpt does not exist"),
])
def test_user_errors_are_one_line(args, message, tmp_path, data_root):
    result = run_cli("train.py", "stage=1", *args, *SMALL_DATA_OVERRIDES, f"paths.data_root={data_root}",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message)


def test_unknown_option_names_the_fix(tmp_path):
    result = run_cli("train.py", "no_such_key=1", f"hydra.run.dir={tmp_path}")
    assert result.returncode != 0 and "To append to your config use +no_such_key=1" in result.stderr


def test_bf16_mixed_precision_trains_on_cpu(tmp_path, data_root):
    out = tmp_path / "bf16"
    run(compose_config(TINY_TRAIN_OVERRIDES + [f"paths.data_root={data_root}", "hardware.precision=bf16-mixed",
                                               "train.max_tokens=256"], out))
    ckpt = load_checkpoint(out / "checkpoints" / "final.ckpt")
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert ckpt["last_loss"] == ckpt["last_loss"]  # not NaN
