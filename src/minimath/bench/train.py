"""Training-step benchmark: our Lightning training path against a plain PyTorch reference, side by side.

    python -m minimath.bench model=nano hardware=cpu
    python -m minimath.bench model=gpt4l256 hardware=cpu_bf16   # 4 layers × 256, Qwen's 151,936-row vocabulary
    python -m minimath.bench model=minimath_1p5b hardware=gpu micro_batch=8 seq_len=2048
    python -m minimath.bench micro_batch=20 seq_len=128 steps=200 full=true   # + the whole train.py step

Both variants train the identical model on the same random batches, each in a fresh subprocess (so each one's
peak memory is its own), alternating `repeats` times (medians are reported: these machines are noisy). `ours`
is `MiniMathModule` under a Lightning Trainer (chunked output-layer loss, the hardware preset's precision, fused
AdamW); `reference` is a hand-written loop with naive full-logits cross-entropy, AdamW and clipping, in fp32 on
CPU and under bf16 autocast on GPU (`reference_precision=bf16-mixed` gives a same-precision comparison on CPU).
`full=true` adds `full`: the whole step as `python train.py` runs it (its config's callbacks, logging, checkpoints,
held-out eval and data loading, on the embedded data; the model is the training config's, at the bench's shape).
It prints tokens/s, MFU (transformer, output layer and both; see `minimath.flops`) and peak memory of each,
then the ratios.
"""

from __future__ import annotations

import importlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from minimath.config import CONF_DIR, run_entry_point
from minimath.errors import exit_on_user_error
from minimath.flops import flops_per_token, mfu, peak_flops
from minimath.hardware import ProbeShape, resolve_precision
from minimath.log import quiet_third_party
from minimath.model import ModelConfig, Transformer


def model_config(spec: dict) -> ModelConfig:
    return ModelConfig.from_preset(spec["model"], vocab_size=spec["vocab_size"], max_seq_len=spec["seq_len"])


def batches(spec: dict, device: str) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(spec["warmup"] + spec["steps"]):
        window = torch.randint(0, spec["vocab_size"], (spec["micro_batch"], spec["seq_len"] + 1), generator=g)
        out.append({"input_ids": window[:, :-1].to(device), "targets": window[:, 1:].to(device)})
    return out


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reference_precision(setting: str, accelerator: str) -> str:
    """`auto`: the plain step as people write it — bf16 autocast on GPU, fp32 on CPU; else 32-true|bf16-mixed."""
    if setting == "auto":
        return "bf16-mixed" if accelerator == "gpu" else "32-true"
    if setting not in ("32-true", "bf16-mixed"):
        raise SystemExit(f"error: reference_precision={setting!r}: auto, 32-true or bf16-mixed")
    return setting


def run_reference(spec: dict, device: str) -> list[float]:
    """A plain training step: full logits, naive cross-entropy, AdamW, clipping; fp32 or bf16 autocast."""
    torch.manual_seed(0)
    model = Transformer(model_config(spec)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec["lr"], betas=(0.9, 0.95), weight_decay=0.1)
    times = []
    for batch in batches(spec, device):
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=spec["reference_precision"] == "bf16-mixed"):
            logits = model(batch["input_ids"])
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch["targets"].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times[spec["warmup"] :]


def run_ours(spec: dict, device: str) -> list[float]:
    """The training path `train.py` uses: MiniMathModule under a Lightning Trainer."""
    import lightning as L

    from minimath.lit_module import MiniMathModule, module_hparams

    class StepTimer(L.Callback):
        def __init__(self):
            self.times, self._start = [], 0.0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            _sync(device)
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            _sync(device)
            self.times.append(time.perf_counter() - self._start)

    torch.manual_seed(0)
    optim = {"lr": spec["lr"], "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1, "fused": "auto"}
    module = MiniMathModule(
        **module_hparams(model_config(spec), optim, {"name": "qwen"}), loss_chunk_bytes=spec["loss_chunk_bytes"]
    )
    if spec["compile"]:
        module.model.compile()  # in place: parameter names (and checkpoints) stay the same
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=spec["precision"],
        max_steps=spec["warmup"] + spec["steps"],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches(spec, "cpu"), batch_size=None))
    return timer.times[spec["warmup"] :]


def run_full(spec: dict, device: str) -> list[float]:
    """The whole step as `python train.py` runs it: the training config (`conf/config.yaml`: the embedded data's
    stage 4 from scratch, its callbacks, logging, checkpointing, held-out eval and data loading) at the bench's
    micro-batch, sequence length and precision, one micro-batch per step. Returns the wall time between
    consecutive optimizer-step ends, so whatever runs between steps (metrics, checkpoints, eval) is counted."""
    import tempfile

    import lightning as L
    from hydra import compose, initialize_config_dir

    from minimath import training
    from minimath.schema import register_configs

    ends: list[float] = []

    class StepEnds(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            _sync(device)
            ends.append(time.perf_counter())

    built = training.build_callbacks
    training.build_callbacks = lambda cfg, names: [*built(cfg, names), StepEnds()]
    register_configs()
    with tempfile.TemporaryDirectory() as runs:
        overrides = [
            "stage=4",
            f"model={spec['model']['name']}",
            "init_from=none",
            f"paths.runs={runs}",
            "run_name=bench",
            f"model.max_seq_len={spec['seq_len']}",
            f"batch={spec['micro_batch'] * spec['seq_len']}",
            f"hardware.micro_batch={spec['micro_batch']}",
            f"hardware.precision={spec['precision']}",
            f"hardware.accelerator={spec['accelerator']}",
            f"train.max_tokens={(spec['warmup'] + spec['steps']) * spec['micro_batch'] * spec['seq_len']}",
            f"train.compile={spec['compile']}",
            *spec["full_overrides"],
        ]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        cfg.paths.output_dir = str(Path(runs) / "stage")
        training.run(cfg)
    return [b - a for a, b in zip(ends[spec["warmup"] :], ends[spec["warmup"] + 1 :])]


VARIANTS = {"reference": run_reference, "ours": run_ours, "full": run_full}


def worker(variant: str, spec: dict) -> None:
    importlib.import_module("lightning")  # both variants import it first: its footprint is in neither's peak

    device = "cuda" if spec["accelerator"] == "gpu" else "cpu"
    before = rss_bytes()
    times = VARIANTS[variant](spec, device)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    mean = sum(times) / len(times)
    times = sorted(times)
    print(
        json.dumps(
            {"variant": variant, "median_step_s": times[len(times) // 2], "mean_step_s": mean, "peak_bytes": peak}
        )
    )


def measure(variant: str, spec: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "minimath.bench", "--worker", variant, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"error: the {variant} benchmark failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_spec(cfg: DictConfig) -> dict:
    """What each variant's worker process is told (plain JSON)."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    return {
        "model": model,
        "vocab_size": int(model["vocab_size"] or cfg.vocab_size),
        "seq_len": int(cfg.seq_len),
        "micro_batch": int(cfg.micro_batch),
        "steps": int(cfg.steps),
        "warmup": int(cfg.warmup),
        "lr": float(model["lr"]),
        "loss_chunk_bytes": cfg.loss_chunk_bytes,
        "compile": bool(cfg.compile),
        "full_overrides": list(cfg.full_overrides),
        "precision": resolve_precision(
            str(cfg.hardware.precision),
            str(cfg.hardware.accelerator),
            ProbeShape(int(cfg.micro_batch) * int(cfg.seq_len), int(model["n_embd"]), int(model["ffn_hidden"])),
        ),
        "accelerator": str(cfg.hardware.accelerator),
        "reference_precision": reference_precision(str(cfg.reference_precision), str(cfg.hardware.accelerator)),
    }


def report(cfg: DictConfig) -> dict:
    from minimath.training import check_device

    check_device(cfg.hardware)  # hardware=gpu without a GPU: train.py's one-line error, not a CUDA traceback
    spec = bench_spec(cfg)
    model = spec["model"]
    tokens = spec["micro_batch"] * spec["seq_len"]
    flops = flops_per_token(model_config(spec), spec["seq_len"])
    peak = peak_flops(cfg.hardware.peak_tflops, spec["precision"])
    print(
        f"model {model['name']}: {model['n_layer']}L × {model['n_embd']}, vocab {spec['vocab_size']:,}; batch "
        f"{spec['micro_batch']}×{spec['seq_len']}; {spec['steps']} timed steps after {spec['warmup']}; "
        f"ours: {spec['precision']}, loss chunks of {spec['loss_chunk_bytes']} bytes of logits, "
        f"compile {spec['compile']}; "
        f"reference: {spec['reference_precision']}, full logits; "
        f"FLOPs/token: transformer {flops.transformer:.3g}, output layer {flops.output_layer:.3g}"
    )
    if peak:
        print(f"peak: {peak / 1e12:.2f} TFLOP/s ({cfg.hardware.peak_tflops})")
    runs = {"reference": [], "ours": [], **({"full": []} if cfg.full else {})}
    for _ in range(int(cfg.repeats)):  # alternate the variants so drift on a noisy machine hits both alike
        for variant in runs:
            runs[variant].append(measure(variant, spec))
    results = {}
    for variant, measured in runs.items():
        # the full path's mean: what it spends between steps now and then (eval, checkpoints) is part of its cost
        per_step = "mean_step_s" if variant == "full" else "median_step_s"
        rates = sorted(tokens / m[per_step] for m in measured)
        r = {
            "tokens_per_s": rates[len(rates) // 2],
            "peak_bytes": max(m["peak_bytes"] for m in measured),
            "tokens_per_s_each_run": [round(tokens / m[per_step], 1) for m in measured],
        }
        line = (
            f"{variant:>9}: {r['tokens_per_s']:>10,.0f} tokens/s (median of {r['tokens_per_s_each_run']})  "
            f"peak memory {r['peak_bytes'] / 2**30:6.2f} GiB"
        )
        if peak:
            r.update(mfu(r["tokens_per_s"], flops, peak))
            line += (
                f"  MFU {100 * r['mfu']:.1f}% (output layer {100 * r['mfu_output_layer']:.1f}%, "
                f"total {100 * r['mfu_total']:.1f}%)"
            )
        print(line)
        results[variant] = r
    speed = results["ours"]["tokens_per_s"] / results["reference"]["tokens_per_s"]
    memory = results["ours"]["peak_bytes"] / results["reference"]["peak_bytes"]
    print(f"ours/reference: {speed:.2f}x tokens/s, {memory:.2f}x peak memory")
    if "full" in results:
        whole = results["full"]["tokens_per_s"] / results["reference"]["tokens_per_s"]
        print(f"full/reference: {whole:.2f}x tokens/s (the whole train.py step: callbacks, logging, data loading)")
    return results


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="bench")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    report(cfg)


def entry() -> None:
    """`python -m minimath.bench [overrides]`, or one measured variant in its own process (`--worker`)."""
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], json.loads(sys.argv[3]))
    else:
        run_entry_point(main, "bench")


if __name__ == "__main__":
    entry()
