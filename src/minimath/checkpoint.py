"""Checkpoints: written atomically, read safely (`weights_only=True`, once), their run metadata behind one
accessor (`CheckpointMeta`), and their weights checked against the configured model."""

from __future__ import annotations

import math
import pickle
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from minimath.errors import UserError, first_line
from minimath.io import atomic_write
from minimath.model import ModelConfig


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about the run that wrote it, beside its weights and optimizer state. The only place
    that knows the keys: `MiniMathModule` writes them through `into`, everything else reads them through `of`
    (`KEYS`: every top-level key `of` reads; `global_step` is Lightning's own)."""

    stage: int | None = None
    tokens_seen: int = 0  # input positions consumed by optimizer steps, all ranks, carried across stages
    tokens_per_step: int = 0  # the batch the checkpoint was trained with
    last_loss: float = math.nan  # mean training loss of the last optimizer step
    global_step: int = 0  # optimizer steps of the stage that wrote it (Lightning's own key)
    stage_start_tokens: int = 0  # tokens_seen when its stage began: the LR schedule is keyed by tokens since
    heldout: dict = field(default_factory=dict)  # the data's held-out generator configs (hyper-parameters)

    WRITTEN = ("stage", "tokens_seen", "tokens_per_step", "last_loss", "stage_start_tokens")
    KEYS = WRITTEN + ("global_step",)

    @classmethod
    def of(cls, ckpt: dict) -> CheckpointMeta:
        stage = ckpt.get("stage")
        tokens, per_step, steps = (int(ckpt.get(k, 0)) for k in ("tokens_seen", "tokens_per_step", "global_step"))
        # checkpoints written before the key existed had one batch per stage: the start is derived from it
        start = int(ckpt.get("stage_start_tokens", tokens - steps * per_step))
        return cls(
            stage=None if stage is None else int(stage),
            tokens_seen=tokens,
            tokens_per_step=per_step,
            last_loss=float(ckpt.get("last_loss", math.nan)),
            global_step=steps,
            stage_start_tokens=start,
            heldout=dict(ckpt.get("hyper_parameters", {}).get("heldout") or {}),
        )

    def into(self, checkpoint: dict) -> None:
        checkpoint.update({key: getattr(self, key) for key in self.WRITTEN})


MODEL_KEYS = ("state_dict", "hyper_parameters")  # the weights, and the arguments that rebuild the model
LIGHTNING_KEYS = ("epoch", "pytorch-lightning_version")  # Lightning's stamp, beside its global_step
# a checkpoint without its training state (optimizer moments, loops, callbacks): weights to evaluate or start from
WEIGHTS_KEYS = MODEL_KEYS + CheckpointMeta.KEYS + LIGHTNING_KEYS


def without_training_state(ckpt: dict) -> dict:
    return {key: ckpt[key] for key in WEIGHTS_KEYS if key in ckpt}


def weights_checkpoint(config: ModelConfig, state: dict[str, torch.Tensor]) -> dict:
    """A checkpoint dict of weights alone (our model's state dict, the inverse of `model_state`), as a stage starts
    from it: no training state, the metadata of a run that has not begun."""
    ckpt = {"state_dict": {f"model.{k}": v for k, v in state.items()}, "hyper_parameters": {"model": asdict(config)}}
    CheckpointMeta().into(ckpt)
    return ckpt


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the same directory, then renames it over the target, so a
    crash (or SIGKILL) during a write leaves the previous checkpoint intact and loadable. Reads with
    `weights_only=True`; a checkpoint the run has already read (`preloaded`: path -> dict) is handed over instead
    of being read a second time (at 1.5B with AdamW moments that is tens of GB)."""

    def __init__(self, preloaded: dict[Path, dict] | None = None):
        super().__init__()
        self._preloaded = {Path(p).resolve(): ckpt for p, ckpt in (preloaded or {}).items()}

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        atomic_write(Path(path), lambda f: torch.save(checkpoint, f))

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        ckpt = self._preloaded.pop(Path(path).resolve(), None)
        if ckpt is None or "state_dict" not in ckpt:  # not read yet, or only a sharded checkpoint's metadata
            return load_checkpoint(path)
        return ckpt


SHARDED_META = "meta.pt"  # a sharded checkpoint's file of everything that is not a tensor (Lightning's name)


def is_sharded(path: str | Path) -> bool:
    """Whether `path` is a sharded checkpoint: a directory written by `torch.distributed.checkpoint` (FSDP2)."""
    return Path(path).is_dir() and (Path(path) / SHARDED_META).is_file()


def consolidate(path: str | Path) -> dict:
    """A sharded checkpoint as one Lightning checkpoint dict: every tensor whole, on the CPU, read without a process
    group (the whole state must fit in this machine's memory), AdamW's state keyed by parameter index as
    `torch.optim` keeps it (the shards key it by parameter name)."""
    from lightning.fabric.utilities.load import _load_distributed_checkpoint

    ckpt = _load_distributed_checkpoint(Path(path))
    optimizers = sorted((k for k in ckpt if k.startswith("optimizer_")), key=lambda k: int(k.split("_")[1]))
    ckpt["optimizer_states"] = [index_optimizer_state(ckpt.pop(k)) for k in optimizers]
    return ckpt


def index_optimizer_state(state: dict) -> dict:
    """An optimizer state dict keyed by parameter name (`torch.distributed.checkpoint.state_dict`) keyed instead by
    each parameter's position over the groups in order, as `Optimizer.state_dict()` numbers them."""
    index, groups = {}, []
    for group in state["param_groups"]:
        groups.append({**group, "params": [index.setdefault(name, len(index)) for name in group["params"]]})
    return {"state": {index[name]: value for name, value in state["state"].items()}, "param_groups": groups}


def save_consolidated(path: Path, target: Path) -> Path:
    """`consolidate(path)` written atomically to the single file `target`."""
    ckpt = consolidate(path)
    atomic_write(Path(target), lambda f: torch.save(ckpt, f))
    return Path(target)


def load_resume_state(path: str | Path) -> dict:
    """What a resume reads before the trainer does: a checkpoint file whole, or a sharded checkpoint's `meta.pt` alone
    (no `state_dict`: each rank then loads its shards, `minimath.parallel.FSDP2`)."""
    if not is_sharded(path):
        return load_checkpoint(path)
    try:
        return torch.load(Path(path) / SHARDED_META, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise UserError(f"checkpoint {path}: {SHARDED_META} is unreadable ({type(err).__name__})") from None


def load_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint as plain tensors and containers (a sharded one consolidated); a missing or unreadable
    file is a UserError."""
    path = Path(path)
    if is_sharded(path):
        return consolidate(path)
    if path.is_dir():
        inside = next(
            (p for p in (path / "checkpoints" / "final.ckpt", path / "final.ckpt", path / "last.ckpt") if p.is_file()),
            path / "checkpoints" / "final.ckpt",
        )
        raise UserError(f"checkpoint {path} is a directory: pass {inside}")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        # torch's own message goes on to suggest weights_only=False, which would run arbitrary code: not passed on
        reason = "not a zip archive" if "zip" in first_line(err).lower() else type(err).__name__
        raise UserError(f"checkpoint {path} is truncated or not a MiniMATH checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or any(key not in ckpt for key in MODEL_KEYS):
        raise UserError(f"{path} is not a MiniMATH Lightning checkpoint (no state_dict/hyper_parameters)")
    return ckpt


def model_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """The transformer's weights from a checkpoint of `MiniMathModule` (prefix `model.` stripped)."""
    return {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy `state` into `model`, or fail in one line naming the first mismatch and the fix."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        if wrong:
            k = wrong[0]
            detail = f"{k} is {tuple(state[k].shape)} in the checkpoint but {tuple(expected[k].shape)} here"
        else:
            detail = f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}"
        raise UserError(
            f"{source} was trained with a different architecture ({detail}): "
            f"select the model= preset (and vocabulary) it was trained with"
        )
    model.load_state_dict(state)


# ModelConfig fields that may differ between a checkpoint and the model it initialises (init_from): the init's, as the
# weights are loaded over it, and max_seq_len, as RoPE extends. Every other field is architecture.
MAY_DIFFER = frozenset({"init_std", "init_residual", "max_seq_len"})
ARCHITECTURE_FIELDS = tuple(f.name for f in fields(ModelConfig) if f.name not in MAY_DIFFER)
# µP's constants change what the weights compute only under µP (`mup`, checked before them, must agree)
MUP_CONSTANTS = frozenset({"mup_base_width", "mup_scale_emb", "mup_scale_depth"})


def check_architecture(ours: ModelConfig, checkpoint: dict, source: str) -> None:
    """A checkpoint whose model differs from ours in an architecture field — one that changes what the weights
    compute — is a one-line UserError naming the field; shapes are `load_weights`'s to check."""
    theirs = checkpoint.get("hyper_parameters", {}).get("model", {})
    for name in ARCHITECTURE_FIELDS:
        if name in MUP_CONSTANTS and not ours.mup:
            continue
        if name in theirs and theirs[name] != getattr(ours, name):
            raise UserError(
                f"{source} was trained with a different architecture ({name} is {theirs[name]} there, "
                f"{getattr(ours, name)} here): select the model= preset (and vocabulary) it was trained "
                f"with"
            )
