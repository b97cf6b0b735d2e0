#!/usr/bin/env bash
# The report's stage-4 ablation (+33 points from basic arithmetic data) at nano scale: from the default run's
# stage-3 checkpoint, stage 4 as configured (70% arithmetic, 20% equations) against stage 4 with those tokens
# replaced by more stage-3 data — same tokens, same steps — for 3 seeds each (the seed orders the mixture; the
# generated sources keep seed 1234, so both arms read the same prepared data). Two runs go at a time, one thread
# each. Needs the default run first (python train.py). Run from the repository root:
#   bash experiments/stage4_basic_math_lift/run.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
init=$(ls outputs/nano-embedded/stage3-*/checkpoints/final.ckpt)
seeds=("${@:-1 2 3}")
fixed_sources=()
for source in general_en general_zh math_text word_problems_cot basic_math equations; do
  fixed_sources+=("data.sources.$source.seed=1234")
done
without='data.stages.4.mix=[{stage:1,share:0.04},{stage:2,share:0.03},{stage:3,share:0.93}]'
arm() {  # arm NAME SEED [overrides...]
  local name=$1 seed=$2; shift 2
  OMP_NUM_THREADS=1 python train.py stage=4 init_from="$init" run_name="lift-$name-s$seed" seed="$seed" \
    "${fixed_sources[@]}" trainer.enable_progress_bar=false callbacks.heldout_eval.every_n_steps=100000 \
    callbacks.checkpoint.every_n_train_steps=100000 "$@" > "outputs/lift-$name-s$seed.log" 2>&1
  OMP_NUM_THREADS=1 python eval.py ckpt="$(ls outputs/lift-$name-s$seed/stage4-*/checkpoints/final.ckpt)" \
    "tasks=[arithmetic,equations,word_problems]" hydra.run.dir="outputs/lift-$name-s$seed/eval" \
    >> "outputs/lift-$name-s$seed.log" 2>&1
}
for seed in ${seeds[*]}; do
  arm with "$seed" &
  arm without "$seed" "$without" &
  wait
  echo "seed $seed done"
done
python experiments/stage4_basic_math_lift/report.py
