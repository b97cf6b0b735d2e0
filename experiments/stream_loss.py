"""The loss of checkpoints on a stretch of a stage's data stream that their run never trained on (experiments):
sequences `first … first + count − 1` of the stage's position-addressed mixture, rebuilt from the run's saved config
(`<stage dir>/.hydra/config.yaml`), remapped to the checkpoint's vocabulary; the mean loss per target token.

    python experiments/stream_loss.py --config RUN/stage4-bs2.5K/.hydra/config.yaml --first 12000 --count 1600 \
        A.ckpt B.ckpt ...        prints one JSON object {checkpoint: loss}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from minimath.data.prepare import prepare
from minimath.eval.generation import load_for_inference
from minimath.loss import lm_loss
from minimath.tokenizer import CompactTokenizer
from minimath.training import build_datamodule, build_tokenizer


def stream_windows(config: Path, first: int, count: int) -> tuple[np.ndarray, object]:
    """(count, seq_len + 1) base-vocabulary windows at positions first… of the stage's stream, and the tokenizer."""
    cfg = OmegaConf.load(config)
    manifest = prepare(cfg.data, log=lambda *_: None)
    tokenizer = build_tokenizer(cfg.model, manifest)
    mixture = build_datamodule(cfg, manifest, tokenizer).plan.build()
    if first + count > len(mixture):
        raise SystemExit(
            f"positions {first}..{first + count - 1} run past the stage's epoch of {len(mixture)} "
            f"sequences: a second epoch repeats trained sequences"
        )
    windows = np.stack([mixture.get(i)[0] for i in range(first, first + count)]).astype(np.int64)
    return windows, tokenizer


@torch.no_grad()
def mean_loss(ckpt: Path, windows: np.ndarray, tokenizer, batch: int = 32) -> float:
    model, ckpt_tokenizer = load_for_inference(ckpt)
    if ckpt_tokenizer.state_dict() != tokenizer.state_dict():
        raise SystemExit(f"{ckpt} has another vocabulary than the run's config")
    ids = tokenizer.from_base[windows] if isinstance(tokenizer, CompactTokenizer) else windows
    ids = torch.from_numpy(ids)
    total, tokens = 0.0, 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        loss_sum, _ = lm_loss(model.hidden_states(chunk[:, :-1]), model.output_weight, chunk[:, 1:])
        total += float(loss_sum)
        tokens += chunk[:, 1:].numel()
    return total / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("ckpts", type=Path, nargs="+")
    args = parser.parse_args()
    windows, tokenizer = stream_windows(args.config, args.first, args.count)
    print(json.dumps({str(c): mean_loss(c, windows, tokenizer) for c in args.ckpts}))


if __name__ == "__main__":
    main()
