"""The training-metrics callback: per-source loss, the global gradient norm, MFU, the tokens axis."""

import lightning as L
import pytest
import torch
from test_lit_module import RecordingLogger, fixed_batches, make_module

from minimath.callbacks import TrainingMetrics


class LabelledData(L.LightningDataModule):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.batches, batch_size=None)


def test_per_source_loss_is_logged_for_each_source(tiny_model_config):
    torch.manual_seed(0)
    module = make_module(tiny_model_config)
    batches = fixed_batches(tiny_model_config, 2, batch=3)
    for b, labels in zip(batches, ([0, 1, 1], [1, 1, 1])):
        b["source"] = torch.tensor(labels)
    with torch.no_grad():
        from minimath.loss import token_losses

        rows = torch.cat(
            [
                token_losses(module.model.hidden_states(b["input_ids"]), module.model.output_weight, b["targets"]).mean(
                    dim=1
                )
                for b in batches
            ]
        )
    logger = RecordingLogger()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        accumulate_grad_batches=2,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[TrainingMetrics(source_names=["alpha", "beta"])],
    )
    trainer.fit(module, datamodule=LabelledData(batches))
    metrics = logger.records[0][1]
    assert metrics["train_source/alpha"] == pytest.approx(rows[0].item(), rel=1e-5)
    assert metrics["train_source/beta"] == pytest.approx(rows[1:].mean().item(), rel=1e-5)


def test_grad_norm_is_global_when_gradients_are_sharded():
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

    from minimath.callbacks.shared import grad_norm, grads_are_sharded

    assert grads_are_sharded(FSDPStrategy()) and not grads_are_sharded(DDPStrategy())
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))]
    params[0].grad, params[1].grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])

    class TwoShards(FSDPStrategy):  # this rank holds params[0]; the other rank's shard has squared norm 16
        def reduce(self, tensor, group=None, reduce_op="mean"):
            assert reduce_op == "sum"
            return tensor + 16.0

    assert grad_norm(params[:1], TwoShards()).item() == 5.0
    assert grad_norm(params, DDPStrategy()).item() == 5.0  # a replica already holds every gradient


def test_mfu_is_logged_with_a_peak_and_skipped_steps_are_not_logged(tiny_model_config):
    module = make_module(tiny_model_config)
    logger = RecordingLogger()
    batches = fixed_batches(tiny_model_config, 3)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=3,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[TrainingMetrics(peak_tflops=1)],
    )
    batches[1] = {**batches[1], "targets": batches[1]["targets"].clone()}
    original = module.training_step

    def poisoned(batch, batch_idx):  # the second step's loss is NaN: the module skips it, nothing is logged
        out = original(batch, batch_idx)
        if batch_idx == 1:
            module._nonfinite = True
        return out

    module.training_step = poisoned
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    logged = [m["train/step"] for _, m in logger.records]
    assert logged == [0.0, 2.0]
    assert all(0 < m["perf/mfu"] < 1 and m["perf/mfu_total"] > m["perf/mfu"] for _, m in logger.records)


@pytest.mark.slow
def test_progress_counts_optimizer_steps_and_prints_a_plain_line_off_a_terminal(tiny_model_config, caplog):
    import logging

    from minimath.callbacks import Progress

    module = make_module(tiny_model_config)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        accumulate_grad_batches=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Progress(every_seconds=0)],
    )
    with caplog.at_level(logging.INFO, logger="minimath"):
        trainer.fit(
            module, train_dataloaders=torch.utils.data.DataLoader(fixed_batches(tiny_model_config, 6), batch_size=None)
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "minimath"]
    assert [line.split(" | ")[0] for line in lines] == ["stage 0 step 1/2 (50%)", "stage 0 step 2/2 (100%)"]
    assert "192 tokens" in lines[-1] and "tokens/s" in lines[-1] and "ETA" in lines[-1]


def spiking_run(cfg, action: str):
    """30 steps of one batch (the loss falls fast at LR 1e-2), except step 25, a batch never seen: a real spike."""
    from minimath.callbacks import StabilityMonitor
    from minimath.guards import LossSpikeGuard

    torch.manual_seed(0)
    module = make_module(cfg, lr=1e-2, loss_guard=LossSpikeGuard(k=4.0, window=20, action=action))
    seen, other = fixed_batches(cfg, 1, seed=0), fixed_batches(cfg, 1, seed=7)
    batches = seen * 25 + other + seen * 4
    monitor = StabilityMonitor(every_n_steps=10)
    weights = {}

    class Around25(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 25:
                weights["before"] = [p.detach().clone() for p in pl_module.parameters()]

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 25:
                weights["after"] = [p.detach().clone() for p in pl_module.parameters()]

    logger = RecordingLogger()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=30,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[TrainingMetrics(), monitor, Around25()],
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    unchanged = all(torch.equal(a, b) for a, b in zip(weights["before"], weights["after"]))
    return module, module.loss_guard, logger, unchanged


@pytest.mark.slow
def test_stability_monitors_log_their_tags_and_a_spike_is_detected(tiny_model_config):
    module, guard, logger, unchanged = spiking_run(tiny_model_config, "report")
    stability = [m for _, m in logger.records if any(k.startswith("stability/layer") for k in m)]
    assert len(stability) == 3  # steps 0, 10, 20
    expected = {
        f"stability/layer{i}/{k}"
        for i in range(tiny_model_config.n_layer)
        for k in ("hidden_rms", "attn_norm_rms", "ffn_norm_rms", "max_attn_logit", "grad_norm", "update_ratio")
    } | {"stability/logit_rms"}
    assert set(stability[0]) == expected
    assert all(v > 0 for v in stability[0].values()) and stability[0]["stability/layer0/attn_norm_rms"] < 2
    assert [step for step, _ in guard.spikes] == [25]
    spike = next(m for _, m in logger.records if "stability/loss_spike" in m)
    assert spike["stability/spike_loss"] > 3.0 and spike["stability/loss_spike"] > 4.0
    assert not unchanged and module.tokens_seen == 30 * 2 * 16


@pytest.mark.slow
def test_spike_action_skip_drops_the_step(tiny_model_config):
    module, guard, logger, unchanged = spiking_run(tiny_model_config, "skip")
    assert [step for step, _ in guard.spikes] == [25]
    assert unchanged  # weights (and so AdamW's view of them) exactly as before the spiking step
    assert module.tokens_seen == 29 * 2 * 16  # the skipped step's tokens are not counted
    train_steps = [m["train/step"] for _, m in logger.records if "train/step" in m]
    assert 25.0 not in train_steps and len(train_steps) == 29


def test_spike_action_is_validated():
    from minimath.guards import LossSpikeGuard

    with pytest.raises(ValueError, match="loss_guard.action"):
        LossSpikeGuard(action="rollback")
