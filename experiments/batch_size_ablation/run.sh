#!/usr/bin/env bash
# The report's batch-size ablation (§5) at nano scale, with seeds: stage 3 forked from the default run's stage-2
# checkpoint with the 10x-apart batch pair (256 and 2,560 tokens per step, as 163K and 1.63M in the report), same
# tokens, 3 seeds each (the seed orders the mixture; the generated sources keep seed 1234); then the report script.
# Needs the default run first (python train.py). Run from the repository root:
#   bash experiments/batch_size_ablation/run.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/seeded_runs.sh
init=$(ls outputs/nano-embedded/stage2-*/checkpoints/final.ckpt)
seeds=("${@:-1 2 3}")
for seed in ${seeds[*]}; do
  seeded_stage "batch-ablation-bs256-s$seed" "$seed" 3 "$init" batch=256 &
  seeded_stage "batch-ablation-bs2.5K-s$seed" "$seed" 3 "$init" batch=2.5K &
  wait
  echo "seed $seed done"
done
python experiments/batch_size_ablation/report.py
