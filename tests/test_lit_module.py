from dataclasses import asdict

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import Logger

from minimath.callbacks import TrainingMetrics
from minimath.lit_module import MiniMathModule, module_hparams
from minimath.model import ModelConfig

OPTIM = {"lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}


class RecordingLogger(Logger):
    """Keeps every (step, metrics) pair the module logs."""

    def __init__(self):
        super().__init__()
        self.records = []

    @property
    def name(self):
        return "recording"

    @property
    def version(self):
        return 0

    def log_metrics(self, metrics, step=None):
        self.records.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def make_module(cfg: ModelConfig, lr=3e-3, **kwargs) -> MiniMathModule:
    return MiniMathModule(**module_hparams(cfg, {**OPTIM, "lr": lr}, {"name": "qwen"}), **kwargs)


def fixed_batches(cfg, n_batches, batch=2, seq=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        window = torch.randint(0, cfg.vocab_size, (batch, seq + 1), generator=g)
        out.append({"input_ids": window[:, :-1], "targets": window[:, 1:]})
    return out


def fit(module, batches, accumulate=1, max_steps=None, logger=None, precision="32-true", clip=1.0):
    trainer = L.Trainer(
        accelerator="cpu",
        precision=precision,
        max_steps=max_steps or len(batches) // accumulate,
        logger=logger or False,
        accumulate_grad_batches=accumulate,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        gradient_clip_val=clip,
        callbacks=[TrainingMetrics()],
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return trainer


def test_loss_falls_when_overfitting_one_batch(tiny_model_config):
    torch.manual_seed(0)
    module = make_module(tiny_model_config, lr=1e-2)
    batch = fixed_batches(tiny_model_config, 1)
    logger = RecordingLogger()
    fit(module, batch * 60, logger=logger)
    losses = [m["train/loss"] for _, m in logger.records]
    assert losses[0] == pytest.approx(torch.log(torch.tensor(96.0)).item(), abs=0.3)
    assert losses[-1] < 0.3 * losses[0]


def test_metrics_are_stepped_by_tokens_seen_with_accumulation(tiny_model_config):
    module = make_module(tiny_model_config)
    logger = RecordingLogger()
    fit(module, fixed_batches(tiny_model_config, 6), accumulate=3, logger=logger)
    steps = [s for s, _ in logger.records]
    assert steps == [3 * 2 * 16, 6 * 2 * 16]  # 3 micro-batches of 2×16 tokens per optimizer step
    assert module.tokens_seen == 192
    first = logger.records[0][1]
    assert set(first) >= {"train/loss", "train/lr", "train/grad_norm", "train/tokens_seen", "train/tokens_per_s"}
    assert first["train/lr"] == pytest.approx(3e-3)
    assert first["train/grad_norm"] > 0


def test_step_loss_is_token_weighted_mean_over_micro_batches(tiny_model_config):
    """The logged loss of an accumulated step equals the loss of all its micro-batches taken together."""
    torch.manual_seed(0)
    module = make_module(tiny_model_config)
    batches = fixed_batches(tiny_model_config, 2)
    with torch.no_grad():
        merged = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
        from minimath.loss import next_token_loss

        expected, _ = next_token_loss(
            module.model.hidden_states(merged["input_ids"]), module.model.output_weight, merged["targets"]
        )
    logger = RecordingLogger()
    fit(module, batches, accumulate=2, logger=logger)
    assert logger.records[0][1]["train/loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_weight_decay_only_on_matrices(tiny_model_config):
    opt = make_module(tiny_model_config).configure_optimizers()["optimizer"]
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() == 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


def test_hparams_must_be_plain_containers(tiny_model_config):
    from omegaconf import OmegaConf

    with pytest.raises(TypeError, match="plain dict"):
        module_hparams(tiny_model_config, OmegaConf.create(OPTIM), {"name": "qwen"})
    assert module_hparams(tiny_model_config, OPTIM, {"name": "qwen"})["model"] == asdict(tiny_model_config)


# First three optimizer-step losses of a fixed tiny config (CPU, fp32, torch 2.13.0). A change here means the
# model, init, loss or optimizer changed numerically: update the values only if that change was intended.
GOLDEN_LOSSES = [4.5523, 4.5623, 4.5918]


def test_golden_losses(tiny_model_config):
    torch.manual_seed(1234)
    module = make_module(tiny_model_config)
    logger = RecordingLogger()
    fit(module, fixed_batches(tiny_model_config, 3, seed=1), logger=logger)
    assert [round(m["train/loss"], 4) for _, m in logger.records] == pytest.approx(GOLDEN_LOSSES, abs=2e-4)


def test_mup_optimizer_groups_take_the_per_group_lr(tiny_model_config):
    """Under µP AdamW holds three groups: hidden matrices at lr/m with decay, the tied embedding at lr with decay,
    norm gains at lr without; the logged train/lr is the schedule's base LR."""
    cfg = ModelConfig(**{**asdict(tiny_model_config), "mup": True, "mup_base_width": 8})  # m = 32/8 = 4
    opt = make_module(cfg, lr=1e-2).configure_optimizers()["optimizer"]
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["hidden_matrices"]["lr"] == pytest.approx(2.5e-3)
    assert by_name["hidden_matrices"]["weight_decay"] == 0.1
    assert by_name["embedding"]["lr"] == pytest.approx(1e-2) and by_name["embedding"]["weight_decay"] == 0.1
    assert by_name["vectors"]["lr"] == pytest.approx(1e-2) and by_name["vectors"]["weight_decay"] == 0.0
    logger = RecordingLogger()
    fit(make_module(cfg, lr=1e-2), fixed_batches(cfg, 2), logger=logger)
    assert logger.records[0][1]["train/lr"] == pytest.approx(1e-2)


def test_moments_of_another_parametrisation_are_a_one_line_error(tiny_model_config):
    from minimath.errors import UserError

    standard = make_module(tiny_model_config)
    opt = standard.configure_optimizers()["optimizer"]
    ckpt = {
        "state_dict": {f"model.{k}": v for k, v in standard.model.state_dict().items()},
        "optimizer_states": [opt.state_dict()],
    }
    mup = make_module(ModelConfig(**{**asdict(tiny_model_config), "mup": True, "mup_base_width": 8}))
    with pytest.raises(UserError, match="moments for 2 parameter groups, this model has 3"):
        mup.start_from(ckpt, "a.ckpt", load_optimizer=True)
    make_module(tiny_model_config).start_from(ckpt, "a.ckpt", load_optimizer=True)  # same parametrisation: fine


def test_fused_adamw_clips_under_bf16_mixed_like_the_foreach_kernel(tiny_model_config):
    """Lightning's mixed-precision plugin refuses gradient clipping for a fused AdamW; under bf16-mixed (no loss
    scaler) the module clips itself, so the GPU default (bf16-mixed, fused, clip 1.0) trains, and the step equals the
    unfused one's. lr 1.0 makes the gradients' norm far above the clip, so an unclipped step would differ."""
    batches = fixed_batches(tiny_model_config, 2)

    def trained_weights(fused: bool, clip: float | None) -> torch.Tensor:
        torch.manual_seed(0)
        module = MiniMathModule(**module_hparams(tiny_model_config, {**OPTIM, "lr": 1.0, "fused": fused}, {}))
        trainer = fit(module, batches, precision="bf16-mixed", clip=clip)
        assert trainer.global_step == 2
        assert trainer.optimizers[0].defaults["fused"] is (True if fused else None)
        return torch.cat([p.detach().flatten() for p in module.parameters()])

    fused = trained_weights(True, clip=1.0)
    # the kernels round differently (lr 1.0 magnifies it to ~5e-4 here); a missing clip moves weights by far more
    torch.testing.assert_close(fused, trained_weights(False, clip=1.0), rtol=0, atol=2e-3)
    moved = (trained_weights(True, clip=None) - fused).abs().max()
    assert moved > 0.1, moved
