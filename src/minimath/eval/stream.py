"""The loss of checkpoints on a stretch of a stage's data stream that their run never trained on: sequences
`first … first + count − 1` of the stage's position-addressed mixture (`minimath.data.mixture`), rebuilt from a run's
config, remapped to the checkpoint's vocabulary; the mean loss per target token. What merges and decays are compared
on (`final_stream_loss`, experiments/checkpoint_averaging): the same unseen sequences for every checkpoint.

    python -m minimath.eval.stream config=RUN/stage4-bs2.5K/.hydra/config.yaml first=12000 count=1600 \\
        ckpts=[A.ckpt,B.ckpt]        prints one JSON object {checkpoint: loss}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from minimath.errors import UserError, exit_on_user_error


def stream_windows(cfg: DictConfig, first: int, count: int) -> tuple[np.ndarray, object]:
    """(count, seq_len + 1) base-vocabulary windows at positions first… of the stage's stream, and the tokenizer.
    Positions past the stage's first epoch are refused: a second epoch repeats trained sequences."""
    from minimath.data.prepare import prepare
    from minimath.training import build_datamodule, build_tokenizer

    if first < 0 or count < 1:
        raise UserError(f"stream loss: first={first}, count={count}: need first >= 0 and count >= 1")
    manifest = prepare(cfg.data, log=lambda *_: None)
    tokenizer = build_tokenizer(cfg.model, manifest)
    mixture = build_datamodule(cfg, manifest, tokenizer).plan.build()
    if first + count > len(mixture):
        raise UserError(
            f"stream loss: positions {first}..{first + count - 1} run past the stage's epoch of {len(mixture)} "
            f"sequences: a second epoch repeats trained sequences"
        )
    windows = np.stack([mixture.get(i)[0] for i in range(first, first + count)]).astype(np.int64)
    return windows, tokenizer


@torch.no_grad()
def mean_loss(ckpt: Path, windows: np.ndarray, tokenizer, batch: int = 32) -> float:
    """Mean loss per target token of `ckpt` on `windows` (fp32, batches of `batch` sequences)."""
    from minimath.eval.generation import load_for_inference
    from minimath.loss import lm_loss
    from minimath.tokenizer import CompactTokenizer

    model, ckpt_tokenizer = load_for_inference(ckpt)
    if ckpt_tokenizer.state_dict() != tokenizer.state_dict():
        raise UserError(f"stream loss: {ckpt} has another vocabulary than the run's config")
    ids = tokenizer.from_base[windows] if isinstance(tokenizer, CompactTokenizer) else windows
    ids = torch.from_numpy(ids)
    total, tokens = 0.0, 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        loss_sum, _ = lm_loss(model.hidden_states(chunk[:, :-1]), model.output_weight, chunk[:, 1:])
        total += float(loss_sum)
        tokens += chunk[:, 1:].numel()
    return total / tokens


def stream_losses(cfg: DictConfig, first: int, count: int, ckpts: dict[str, Path]) -> dict[str, float]:
    """{name: mean loss} of each checkpoint on the same unseen stretch of `cfg`'s stage stream."""
    windows, tokenizer = stream_windows(cfg, first, count)
    return {name: mean_loss(path, windows, tokenizer) for name, path in ckpts.items()}


@exit_on_user_error
def main(argv: list[str]) -> None:
    args = OmegaConf.from_cli(argv)
    missing = [k for k in ("config", "first", "count", "ckpts") if k not in args]
    if missing:
        raise UserError(
            "usage: python -m minimath.eval.stream config=RUN/.hydra/config.yaml first=N count=M ckpts=[A.ckpt,...]"
        )
    config = Path(str(args.config))
    if not config.is_file():
        raise UserError(f"stream loss: no config {config} (a stage directory's .hydra/config.yaml)")
    ckpts = {str(p): Path(str(p)) for p in args.ckpts}
    print(json.dumps(stream_losses(OmegaConf.load(config), int(args.first), int(args.count), ckpts)))


if __name__ == "__main__":
    main(sys.argv[1:])
