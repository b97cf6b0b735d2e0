#!/usr/bin/env bash
# WSD against cosine and constant with the same tokens, and WSD decays branched from three points of one stable
# run (MiniCPM's claim: a decay of ~10% of the tokens ends at or below cosine; decays from later points end lower).
# Stage 4 of the embedded default from its stage-3 checkpoint, 1,024,000 tokens (400 steps of 2,560); 2 seeds
# (the seed orders the mixture; the generated data keeps seed 1234). Needs the default run first (python train.py).
#   bash experiments/wsd_vs_cosine/run.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/seeded_runs.sh
init=$(ls outputs/nano-embedded/stage3-bs2.5K/checkpoints/final.ckpt)
seeds=("${@:-1 2}")
T=1024000              # 400 steps of 2,560 tokens
D=102400               # a decay of 10% of T (40 steps)
common=(train.max_tokens=$T scheduler=wsd scheduler.warmup_steps=20 scheduler.final_ratio=0.1)
for seed in ${seeds[*]}; do
  # the stable run (warmup, then the base LR to the end: the constant schedule) keeps a checkpoint every 40 steps
  seeded_stage "wsd-stable-s$seed" "$seed" 4 "$init" "${common[@]}" scheduler.decay_fraction=0 \
    checkpoint.every_n_train_steps=40 checkpoint.keep_last=null &
  seeded_stage "wsd-cosine-s$seed" "$seed" 4 "$init" train.max_tokens=$T scheduler=cosine scheduler.warmup_steps=20 \
    scheduler.final_ratio=0.1 &
  wait
  seeded_stage "wsd-wsd10-s$seed" "$seed" 4 "$init" "${common[@]}" scheduler.decay_fraction=0.1 scheduler.shape=exp &
  for point in 160 240; do
    ckpt=$(ls outputs/wsd-stable-s$seed/stage4-*/checkpoints/step0000$point.ckpt)
    seeded_stage "wsd-branch$point-s$seed" "$seed" 4 "$init" scheduler=wsd branch_from="$ckpt" \
      scheduler.decay_tokens=$D scheduler.shape=exp scheduler.final_ratio=0.1
  done &
  wait
  ckpt=$(ls outputs/wsd-stable-s$seed/stage4-*/checkpoints/step0000360.ckpt)
  seeded_stage "wsd-branch360-s$seed" "$seed" 4 "$init" scheduler=wsd branch_from="$ckpt" \
    scheduler.decay_tokens=$D scheduler.shape=exp scheduler.final_ratio=0.1
  echo "seed $seed done"
done
python experiments/wsd_vs_cosine/report.py
