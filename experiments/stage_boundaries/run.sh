#!/usr/bin/env bash
# Does a stage boundary keep what was learned? From the default curriculum's stage-2 checkpoint, the first 20 steps
# of stage 3 (the 10x batch step) four ways: fresh AdamW moments or the stage-2 moments (init_optimizer=true),
# each at the full constant LR or after a 20-step warmup; then the default run's loss at every boundary.
# Needs the default run first (python train.py). Run from the repository root:
#   bash experiments/stage_boundaries/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
init=$(ls outputs/nano-embedded/stage2-*/checkpoints/final.ckpt)
common=(stage=3 init_from="$init" train.max_tokens=51200 trainer.enable_progress_bar=false
        callbacks.heldout_eval.every_n_steps=100000 checkpoint.every_n_train_steps=100000)
for moments in false true; do
  python train.py "${common[@]}" run_name="boundary-constant-moments_$moments" scheduler=constant \
    init_optimizer=$moments
  python train.py "${common[@]}" run_name="boundary-warmup-moments_$moments" scheduler=wsd_linear \
    scheduler.decay_fraction=0 init_optimizer=$moments
done
python experiments/stage_boundaries/report.py --run outputs/nano-embedded
