"""Reading checkpoints safely (`weights_only=True`) and checking they fit the configured model."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from minimath.errors import UserError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the same directory, then renames it over the target, so a
    crash (or SIGKILL) during a write leaves the previous checkpoint intact and loadable."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint as plain tensors and containers; a missing or unreadable file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"checkpoint {path} is truncated or not a MiniMATH checkpoint ({first_line})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
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
        raise UserError(f"{source} was trained with a different architecture ({detail}): "
                        f"select the model= preset (and vocabulary) it was trained with")
    model.load_state_dict(state)
