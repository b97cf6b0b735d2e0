#!/usr/bin/env bash
# QK-norm and z-loss at LRs where the standard nano model fails (experiments/mup_wind_tunnel: at width 128 the best
# LR is 2.5e-3; 1e-2 and 2e-2 end 1.0-1.8 nats worse): four arms — baseline, model.qk_norm=true, train.z_loss=1e-4,
# both — at LR 1e-2 and 3e-2, 3 seeds, with the stability monitors every 5 steps. Each run trains stage 3 of the
# embedded data from scratch for 256,000 tokens (100 steps of 2,560; a 10-step warmup, then the constant LR).
#   bash experiments/qk_norm/run.sh [SEEDS...]        then: python experiments/qk_norm/report.py
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/seeded_runs.sh   # SOURCES: the generated data keeps seed 1234 whatever the run's seed
seeds=("${@:-1 2 3}")
declare -A ARMS=([base]="" [qknorm]="model.qk_norm=true" [zloss]="train.z_loss=1e-4"
                 [both]="model.qk_norm=true train.z_loss=1e-4")

stability_run() {  # stability_run ARM LR SEED
  local arm=$1 lr=$2 seed=$3 name="qk-$1-lr$2-s$3" fixed=()
  [ -f "outputs/$name/stage3-bs2.5K/checkpoints/final.ckpt" ] && return 0
  for source in "${SOURCES[@]}"; do fixed+=("data.sources.$source.seed=1234"); done
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 python train.py stage=3 init_from=none run_name="$name" seed="$seed" "${fixed[@]}" \
    optim.lr="$lr" scheduler=wsd scheduler.warmup_steps=10 scheduler.decay_fraction=0 train.max_tokens=256000 \
    callbacks=monitored callbacks.stability.every_n_steps=5 callbacks.heldout_eval.every_n_steps=100000 \
    checkpoint.every_n_train_steps=100000 ${ARMS[$arm]} > "outputs/$name.log" 2>&1
}

for seed in ${seeds[*]}; do
  for lr in 1e-2 3e-2; do
    for arm in base qknorm zloss both; do
      stability_run "$arm" "$lr" "$seed" &
      if (( $(jobs -r | wc -l) >= 2 )); then wait -n; fi
    done
  done
done
wait
python experiments/qk_norm/report.py
