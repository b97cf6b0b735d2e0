"""The LightningModule: next-token loss, AdamW with the LR schedule, the NaN and loss-spike guards, and the state
checkpoints carry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities import GradClipAlgorithmType, rank_zero_warn

from minimath.checkpoint import CheckpointMeta, load_weights, model_state
from minimath.errors import UserError
from minimath.guards import LossSpikeGuard, Spike
from minimath.loss import IGNORE_INDEX, lm_loss
from minimath.model import ModelConfig, Probe, Transformer, document_attention
from minimath.schedules import Constant


class NonFiniteLossError(UserError):
    """Too many optimizer steps in a row had a NaN/Inf loss."""


LOSS_GUARD_KEY = "loss_guard"  # the checkpoint's key for the loss guard's window and spikes (training state)


class MiniMathModule(L.LightningModule):
    """Wraps `Transformer`: the next-token loss, AdamW with its LR schedule, the NaN guard and the loss-spike guard
    (`loss_guard`, `minimath.guards`; None: off). What is logged (loss, LR, throughput, MFU, per-source loss, all
    against tokens seen) is `minimath.callbacks.TrainingMetrics`'s job; this module keeps only the state the training
    needs and the checkpoints carry, and callbacks read it through `minimath.callbacks.TrainingState`.

    `tokens_seen` counts every input position consumed by an optimizer step across all ranks. It is saved in
    checkpoints and carried across stages, so curves from consecutive runs line up on one axis. `last_loss` is
    the token-weighted mean loss of the last optimizer step over all its micro-batches and ranks.
    """

    def __init__(
        self,
        model: dict,
        optim: dict,
        tokenizer: dict,
        heldout: dict | None = None,
        lr_schedule: Callable[[int], float] | None = None,  # tokens into the stage -> LR multiplier
        max_nonfinite_steps: int = 5,
        stage: int = 0,
        tokens_per_step: int = 0,
        loss_chunk_bytes: int | None = None,
        initial_optimizer_state: dict | None = None,
        z_loss: float = 0.0,
        loss_guard: LossSpikeGuard | None = None,
    ):
        super().__init__()
        # The run logs its whole composed config to the loggers itself; this only fills checkpoints.
        self.save_hyperparameters(
            ignore=[
                "lr_schedule",
                "max_nonfinite_steps",
                "stage",
                "tokens_per_step",
                "loss_chunk_bytes",
                "initial_optimizer_state",
                "z_loss",
                "loss_guard",
            ],
            logger=False,
        )
        self.model_config = ModelConfig(**model)
        self.model = Transformer(self.model_config)
        self.lr_schedule = lr_schedule or Constant()
        self.max_nonfinite_steps = max_nonfinite_steps
        self.stage, self.tokens_per_step = stage, tokens_per_step
        # Memory-lean loss: one chunk's block of logits takes at most this many bytes; None: plain cross-entropy.
        self.loss_chunk_bytes = loss_chunk_bytes
        self.z_loss = z_loss  # PaLM/YuLan-Mini z-loss coefficient: z_loss · mean log²Z joins the optimised loss
        self.initial_optimizer_state = initial_optimizer_state  # moments to load at the start (init_optimizer)
        self.tokens_seen = 0
        self.stage_start_tokens = 0  # tokens_seen when this stage began (the schedule's origin)
        self.last_loss = float("nan")
        self.last_step_skipped = False  # the last optimizer step changed nothing (a NaN/Inf loss, or a spike skipped)
        self.loss_guard = loss_guard  # asked with every step's loss before the step is taken
        self.last_spike: Spike | None = None  # what the guard found in the last optimizer step
        self._nonfinite_in_a_row = 0
        self._reset_step_stats()

    def start_from(self, checkpoint: dict, source: str, load_optimizer: bool) -> None:
        """Weights (and, with `load_optimizer`, AdamW moments) of another run's checkpoint; tokens seen carry over."""
        load_weights(self.model, model_state(checkpoint), source)
        self.tokens_seen = self.stage_start_tokens = CheckpointMeta.of(checkpoint).tokens_seen
        if load_optimizer:
            if not checkpoint.get("optimizer_states"):
                raise UserError(f"{source} holds no optimizer state: set init_optimizer=false")
            state = checkpoint["optimizer_states"][0]
            groups = len(self.model.parameter_groups())
            if len(state.get("param_groups", [])) != groups:
                raise UserError(
                    f"{source} holds AdamW moments for {len(state.get('param_groups', []))} parameter "
                    f"groups, this model has {groups} (µP adds one): set init_optimizer=false"
                )
            self.initial_optimizer_state = state

    def _reset_step_stats(self) -> None:
        self._nonfinite = False
        self._loss_sum = torch.zeros((), dtype=torch.float64)
        self._valid_tokens = 0
        self._input_tokens = 0

    def probes(self, logit_positions: int) -> list[Probe]:
        """What the stability monitors may hook in the model's forward pass (`Transformer.probes`)."""
        return self.model.probes(logit_positions)

    def layer_parameters(self) -> list[list[torch.nn.Parameter]]:
        """Each transformer block's parameters, in order."""
        return [list(block.parameters()) for block in self.model.layers]

    def configure_model(self) -> None:
        """Where a parallel strategy shards the model (`minimath.parallel.FSDP2`); otherwise nothing to do."""
        parallelize = getattr(self.trainer.strategy, "parallelize", None)
        if parallelize is not None:
            parallelize(self.model)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """The micro-batch's mean loss (what is backpropagated) and, for the metrics callback, each sequence's
        summed loss and counted tokens."""
        if "documents" in batch:  # packed documents kept apart (the stage's data.stages.<N>.document_mask)
            positions, mask = document_attention(batch["documents"])
            hidden = self.model.hidden_states(batch["input_ids"], positions=positions, mask=mask)
        else:
            hidden = self.model.hidden_states(batch["input_ids"])
        total, losses = lm_loss(
            hidden, self.model.output_weight, batch["targets"], chunk_bytes=self.loss_chunk_bytes, z_loss=self.z_loss
        )
        valid = batch["targets"] != IGNORE_INDEX
        n_valid = int(valid.sum())
        loss = total / max(n_valid, 1)
        if not torch.isfinite(loss):
            self._nonfinite = True  # the whole optimizer step is dropped in on_before_optimizer_step
        else:
            self._loss_sum = self._loss_sum.to(loss.device) + losses.sum().double()
            self._valid_tokens += n_valid
            self._input_tokens += batch["input_ids"].numel()
        self.log("loss", loss, prog_bar=True, logger=False)
        return {"loss": loss, "sequence_loss": losses.detach().sum(dim=1), "sequence_tokens": valid.sum(dim=1)}

    def on_train_start(self) -> None:
        self._reset_step_stats()
        if self.initial_optimizer_state is not None:
            optimizer = self.trainer.optimizers[0]
            optimizer.load_state_dict(self.initial_optimizer_state)  # moments, and the other run's LR
            self.initial_optimizer_state = None
            scheduler = self.trainer.lr_scheduler_configs[0].scheduler
            for group, base in zip(optimizer.param_groups, scheduler.base_lrs):  # this run's schedule decides
                group["lr"] = base * self.lr_schedule(self.stage_tokens)

    def _skip_nonfinite_step(self) -> bool:
        """True when any rank saw a NaN/Inf loss in this step: drop every gradient, so AdamW leaves the weights
        and moments untouched; stop after `max_nonfinite_steps` such steps in a row."""
        flag = torch.tensor(float(self._nonfinite), device=self._loss_sum.device)
        if float(self.trainer.strategy.reduce(flag, reduce_op="sum")) == 0:
            self._nonfinite_in_a_row = 0
            return False
        self._drop_gradients()
        self._nonfinite_in_a_row += 1
        rank_zero_warn(
            f"non-finite loss at step {self.trainer.global_step}: step skipped ({self._nonfinite_in_a_row} in a row)"
        )
        if self._nonfinite_in_a_row >= self.max_nonfinite_steps:
            raise NonFiniteLossError(
                f"{self._nonfinite_in_a_row} optimizer steps in a row had a NaN/Inf loss (at step "
                f"{self.trainer.global_step}): lower optim.lr or check the data; the last good checkpoint is kept"
            )
        self._reset_step_stats()
        return True

    def _drop_gradients(self) -> None:
        """With no gradients AdamW leaves the weights and its moments (and step counts) untouched."""
        for p in self.parameters():
            p.grad = None

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Runs once per optimizer step, after the last micro-batch's backward and before clipping: the NaN guard,
        then the step's loss and tokens over all ranks (one all-reduce), then the loss-spike guard. A skipped step
        changes nothing and its tokens are not counted (the data position still moves past them)."""
        self.last_spike = None
        self.last_step_skipped = self._skip_nonfinite_step()
        if self.last_step_skipped:
            return
        device = self._loss_sum.device
        counts = torch.tensor([self._valid_tokens, self._input_tokens], dtype=torch.float64, device=device)
        stats = torch.cat([self._loss_sum.view(1), counts])
        stats = self.trainer.strategy.reduce(stats, reduce_op="sum")
        self.last_loss = float(stats[0] / stats[1].clamp(min=1))
        self._reset_step_stats()
        if self.loss_guard is not None:
            self.last_spike = self.loss_guard.check(self.trainer.global_step, self.last_loss)
        if self.last_spike is not None and self.last_spike.skip:
            self._drop_gradients()
            self.last_step_skipped = True
            return
        self.tokens_seen += int(stats[2])

    def configure_optimizers(self):
        optim = self.hparams.optim
        fused = optim.get("fused", "auto")
        if fused == "auto":  # one kernel for all parameters on a GPU; not under fp16's loss scaler (see below)
            fused = next(self.parameters()).is_cuda and not _scales_loss(
                getattr(self._trainer, "precision_plugin", None)
            )
        fused = bool(fused)
        groups = [
            {
                "params": params,
                "name": name,
                "lr": optim["lr"] * lr_mult,
                "lr_mult": lr_mult,
                "weight_decay": optim["weight_decay"] if decays else 0.0,
            }
            for name, params, lr_mult, decays in self.model.parameter_groups()
        ]
        optimizer = torch.optim.AdamW(
            groups, lr=optim["lr"], betas=tuple(optim["betas"]), eps=optim["eps"], fused=fused or None
        )
        # keyed by tokens: evaluated at the stage's tokens so far whenever the scheduler steps (after each
        # optimizer step, whose tokens are already counted), whatever the batch
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: self.lr_schedule(self.stage_tokens))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Lightning's mixed-precision plugin refuses to clip for a fused AdamW ("performs unscaling of gradients
        internally"), which is true only under fp16's loss scaler: with bf16-mixed there is no scaler, the gradients
        are already true gradients, and the refusal stopped every GPU run (bf16-mixed, fused AdamW, clip 1.0) at its
        first step. Without a scaler we clip the way the base precision plugin does; with one, Lightning decides."""
        plugin = self.trainer.precision_plugin
        if gradient_clip_val and isinstance(plugin, MixedPrecision) and not _scales_loss(plugin):
            algorithm = GradClipAlgorithmType(gradient_clip_algorithm or GradClipAlgorithmType.NORM)
            Precision.clip_gradients(plugin, optimizer, gradient_clip_val, algorithm)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    @property
    def stage_tokens(self) -> int:
        """Tokens this stage has trained so far (over all ranks)."""
        return self.tokens_seen - self.stage_start_tokens

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        CheckpointMeta(
            stage=self.stage,
            tokens_seen=self.tokens_seen,
            tokens_per_step=self.tokens_per_step,
            last_loss=self.last_loss,
            stage_start_tokens=self.stage_start_tokens,
        ).into(checkpoint)
        if self.loss_guard is not None:
            checkpoint[LOSS_GUARD_KEY] = self.loss_guard.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = CheckpointMeta.of(checkpoint)
        self.tokens_seen, self.last_loss = meta.tokens_seen, meta.last_loss
        self.stage_start_tokens = meta.stage_start_tokens
        if self.loss_guard is not None:
            self.loss_guard.load_state_dict(checkpoint.get(LOSS_GUARD_KEY, {}))


def module_hparams(model_config: ModelConfig, optim: dict, tokenizer_state: dict, heldout: dict | None = None) -> dict:
    """The constructor arguments as plain containers, so checkpoints load with `weights_only=True`. `heldout`: the
    generator configs of the data's held-out sets, so `eval.py` measures what the checkpoint was trained on."""
    if not isinstance(optim, dict) or not isinstance(heldout or {}, dict):
        raise TypeError(
            "optim and heldout must be plain dicts (OmegaConf.to_container) to keep checkpoints weights_only-safe"
        )
    return {"model": asdict(model_config), "optim": optim, "tokenizer": tokenizer_state, "heldout": heldout or {}}


def _scales_loss(plugin: Precision | None) -> bool:
    """True under fp16 mixed precision, whose gradient scaler leaves gradients scaled until the optimizer step."""
    return getattr(plugin, "scaler", None) is not None
