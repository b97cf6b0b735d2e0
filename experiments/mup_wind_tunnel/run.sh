#!/usr/bin/env bash
# µP wind tunnel (MiniCPM): widths 64, 128, 256 at depth 4 (head size 32, FFN 4·d), 6 LRs each (a factor of 2 apart,
# each grid bracketing its parametrisation's best), under the standard parametrisation and under µP
# (model.mup=true, base width 64), 2 seeds. Each run trains stage 3 of the embedded
# data from scratch for 256,000 tokens (100 steps of 2,560; a 10-step warmup, then the constant LR), reading every
# sequence once, so the loss of the last steps is a loss on unseen data. Two runs at a time, one thread each.
#   bash experiments/mup_wind_tunnel/run.sh [SEEDS...]        then: python experiments/mup_wind_tunnel/report.py
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/seeded_runs.sh   # SOURCES: the generated data keeps seed 1234 whatever the run's seed
seeds=("${@:-1 2}")
LRS_SP=(6.25e-4 1.25e-3 2.5e-3 5e-3 1e-2 2e-2)
LRS_MUP=(1.25e-3 2.5e-3 5e-3 1e-2 2e-2 4e-2)

tunnel_run() {  # tunnel_run PARAM WIDTH LR SEED
  local param=$1 width=$2 lr=$3 seed=$4 name="mup-$1-w$2-lr$3-s$4" fixed=()
  [ -f "outputs/$name/stage3-bs2.5K/checkpoints/final.ckpt" ] && return 0
  for source in "${SOURCES[@]}"; do fixed+=("data.sources.$source.seed=1234"); done
  OMP_NUM_THREADS=1 python train.py stage=3 init_from=none run_name="$name" seed="$seed" "${fixed[@]}" \
    model.n_embd="$width" model.n_head=$((width / 32)) model.n_kv_head=$((width / 32)) \
    model.ffn_hidden=$((4 * width)) model.mup=$([ "$param" = mup ] && echo true || echo false) \
    model.mup_base_width=64 optim.lr="$lr" scheduler=wsd scheduler.warmup_steps=10 scheduler.decay_fraction=0 \
    train.max_tokens=256000 callbacks.heldout_eval.every_n_steps=100000 \
    checkpoint.every_n_train_steps=100000 > "outputs/$name.log" 2>&1
}

jobs_list=()
for seed in ${seeds[*]}; do
  for width in 256 128 64; do
    for lr in "${LRS_SP[@]}"; do jobs_list+=("sp $width $lr $seed"); done
    for lr in "${LRS_MUP[@]}"; do jobs_list+=("mup $width $lr $seed"); done
  done
done
i=0
for job in "${jobs_list[@]}"; do
  # shellcheck disable=SC2086
  tunnel_run $job &
  i=$((i + 1))
  if (( i % 2 == 0 )); then wait; fi
done
wait
python experiments/mup_wind_tunnel/report.py
