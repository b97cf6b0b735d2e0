"""Checkpoint averaging (YuLan-Mini's merging of the last checkpoints of a stage).

    python -m minimath.average ckpts=[A.ckpt,B.ckpt,C.ckpt] out=avg.ckpt             uniform mean
    python -m minimath.average ckpts=[A.ckpt,B.ckpt,C.ckpt] out=avg.ckpt ema=0.5     EMA weights, oldest first

A single-stage run does the same after training with `final_merges: {NAME: {last: K, ema: null}}` (`merge_last`:
the stage's last K step checkpoints into `<stage dir>/merged/NAME.ckpt`).

The weights are averaged in fp32 (then cast back to each tensor's dtype); everything else — hyper-parameters, the
tokenizer, the run metadata (`CheckpointMeta`) — comes from the newest (last) checkpoint. Optimizer moments and loop
state are dropped: the result is a set of weights for `eval.py` and for `init_from=` (a new stage), not a point to
resume from. Every checkpoint must have the same architecture; a mismatch is a one-line error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from minimath.checkpoint import AtomicCheckpointIO, load_checkpoint, without_training_state
from minimath.errors import UserError, exit_on_user_error
from minimath.runs import checkpoint_dir

MERGED = "merged"  # a stage directory's merges of its own checkpoints (final_merges)


def average_weights(count: int, ema: float | None) -> list[float]:
    """Weights of `count` checkpoints, oldest first: uniform, or EMA with decay `ema` (the newest weighs most:
    w_i ∝ (1−ema)·ema^(count−1−i), the oldest taking the remaining mass as an EMA started from it would)."""
    if count < 1:
        raise UserError("average: ckpts=[...] needs at least one checkpoint")
    if ema is None:
        return [1.0 / count] * count
    if not 0.0 <= ema < 1.0:
        raise UserError(f"average: ema={ema} must be in [0, 1)")
    weights = [(1 - ema) * ema ** (count - 1 - i) for i in range(count)]
    weights[0] = ema ** (count - 1)  # the EMA's starting value
    return weights


def average_checkpoints(paths: list[Path], ema: float | None = None) -> dict:
    weights = average_weights(len(paths), ema)
    newest = load_checkpoint(paths[-1])
    reference = newest["state_dict"]
    sums = {k: torch.zeros_like(v, dtype=torch.float32) for k, v in reference.items()}
    for path, weight in zip(paths, weights):
        state = newest["state_dict"] if path == paths[-1] else load_checkpoint(path)["state_dict"]
        if set(state) != set(reference) or any(state[k].shape != reference[k].shape for k in reference):
            raise UserError(f"average: {path} has another architecture than {paths[-1]} (keys or shapes differ)")
        for k, v in state.items():
            sums[k].add_(v.float(), alpha=weight)
    out = without_training_state(newest)
    out["state_dict"] = {k: sums[k].to(reference[k].dtype) for k in reference}
    out["averaged_from"] = {"checkpoints": [str(p) for p in paths], "weights": weights, "ema": ema}
    return out


def merge_last(stage_dir: Path, name: str, last: int, ema: float | None = None) -> Path:
    """The average of the stage's newest `last` step checkpoints (`checkpoints/step<N>.ckpt`, by step), written
    atomically to `<stage_dir>/merged/<name>.ckpt`; too few kept is an error naming the settings that keep them."""
    steps = sorted(checkpoint_dir(stage_dir).glob("step*.ckpt"))
    if last < 1 or len(steps) < last:
        raise UserError(
            f"final_merges.{name}: merging the last {last} step checkpoints, but {stage_dir} kept {len(steps)}: "
            f"set checkpoint.every_n_train_steps so the stage saves them and checkpoint.keep_last=null to keep them"
        )
    out = Path(stage_dir) / MERGED / f"{name}.ckpt"
    AtomicCheckpointIO().save_checkpoint(average_checkpoints(steps[-last:], ema), out)
    return out


@exit_on_user_error
def main(argv: list[str]) -> None:
    args = OmegaConf.from_cli(argv)
    if "ckpts" not in args or "out" not in args:
        raise UserError("usage: python -m minimath.average ckpts=[A.ckpt,B.ckpt] out=OUT.ckpt [ema=0.9]")
    paths = [Path(str(p)) for p in args.ckpts]
    averaged = average_checkpoints(paths, args.get("ema"))
    AtomicCheckpointIO().save_checkpoint(averaged, Path(str(args.out)))
    print(
        f"averaged {len(paths)} checkpoints (weights {[round(w, 4) for w in averaged['averaged_from']['weights']]})"
        f" -> {args.out}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
