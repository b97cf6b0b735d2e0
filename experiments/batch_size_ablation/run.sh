#!/usr/bin/env bash
# The report's batch-size ablation (§5) at nano scale, with seeds: stage 3 forked from the default run's stage-2
# checkpoint with the 10x-apart batch pair (256 and 2,560 tokens per step, as 163K and 1.63M in the report), same
# tokens, 3 seeds each (the seed orders the mixture; the generated sources keep seed 1234); then the report script.
# Needs the default run first (python train.py). Run from the repository root:
#   bash experiments/batch_size_ablation/run.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
init=$(ls outputs/nano-embedded/stage2-*/checkpoints/final.ckpt)
seeds=("${@:-1 2 3}")
fixed_sources=()
for source in general_en general_zh math_text word_problems_cot basic_math equations; do
  fixed_sources+=("data.sources.$source.seed=1234")
done
branch() {  # branch BATCH SEED
  local batch=$1 seed=$2 name="batch-ablation-bs$1-s$2"
  OMP_NUM_THREADS=1 python train.py stage=3 batch="$batch" init_from="$init" run_name="$name" seed="$seed" \
    "${fixed_sources[@]}" trainer.enable_progress_bar=false callbacks.heldout_eval.every_n_steps=100000 \
    callbacks.checkpoint.every_n_train_steps=100000 > "outputs/$name.log" 2>&1
  OMP_NUM_THREADS=1 python eval.py ckpt="$(ls outputs/$name/stage3-*/checkpoints/final.ckpt)" \
    "tasks=[arithmetic,equations,word_problems]" hydra.run.dir="outputs/$name/eval" >> "outputs/$name.log" 2>&1
}
for seed in ${seeds[*]}; do
  branch 256 "$seed" &
  branch 2.5K "$seed" &
  wait
  echo "seed $seed done"
done
python experiments/batch_size_ablation/report.py
