#!/usr/bin/env bash
# Can the embedded stage-4 mixture teach held-out 2-digit arithmetic in CPU minutes, and under which batch/LR?
# Trains stage 4 of data=embedded from scratch with the given overrides, evaluates the held-out arithmetic and
# equations sets, and prints accuracy per operator.
#   bash experiments/stage4_arithmetic/run.sh NAME [hydra overrides...]
set -euo pipefail
cd "$(dirname "$0")/../.."
name=$1; shift
start=$(date +%s)
python train.py stage=4 init_from=none run_name="$name" trainer.enable_progress_bar=false \
  callbacks.heldout_eval.every_n_steps=100000 checkpoint.every_n_train_steps=100000 "$@"
echo "trained in $(( $(date +%s) - start ))s"
ckpt=$(ls outputs/"$name"/stage4-*/checkpoints/final.ckpt)
python eval.py ckpt="$ckpt" "tasks=[arithmetic,equations]" hydra.run.dir=outputs/"$name"/eval
python experiments/stage4_arithmetic/per_operator.py outputs/"$name"/eval/arithmetic.jsonl
