#!/usr/bin/env bash
# The report's stage-4 ablation (+33 points from basic arithmetic data) at nano scale: from the default run's
# stage-3 checkpoint, stage 4 as configured (70% arithmetic, 20% equations) against stage 4 with those tokens
# replaced by more stage-3 data — same tokens, same steps — for 3 seeds each (the seed orders the mixture; the
# generated sources keep seed 1234, so both arms read the same prepared data). Two runs go at a time, one thread
# each. Needs the default run first (python train.py). Run from the repository root:
#   bash experiments/stage4_basic_math_lift/run.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/seeded_runs.sh
init=$(ls outputs/nano-embedded/stage3-*/checkpoints/final.ckpt)
seeds=("${@:-1 2 3}")
without='data.stages.4.mix=[{stage:1,share:0.04},{stage:2,share:0.03},{stage:3,share:0.93}]'
for seed in ${seeds[*]}; do
  seeded_stage "lift-with-s$seed" "$seed" 4 "$init" &
  seeded_stage "lift-without-s$seed" "$seed" 4 "$init" "$without" &
  wait
  echo "seed $seed done"
done
python experiments/stage4_basic_math_lift/report.py
