#!/usr/bin/env bash
# Checkpoint averaging (YuLan-Mini's merging): stage 4 of the embedded default from its stage-3 checkpoint at the
# constant LR (3e-3 after a 20-step warmup, no decay), 1,536,000 tokens (600 steps of 2,560), a checkpoint every
# 25 steps; then the last checkpoint against uniform averages of the last 2, 4 and 8 and an EMA (0.8) over the last
# 8, on the held-out sets (200 items each) and on 1,600 sequences of the stage's stream after the 12,000 trained
# (positions 12,000-13,599 of the first epoch: never trained on); and, for comparison, a WSD decay of the last 50
# steps branched from the same run (what merging is said to approximate). 3 seeds. Needs the default run (python train.py).
#   bash experiments/checkpoint_averaging/run.sh [SEEDS...]       then: python experiments/checkpoint_averaging/report.py
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/seeded_runs.sh
init=$(ls outputs/nano-embedded/stage3-bs2.5K/checkpoints/final.ckpt)
seeds=("${@:-1 2 3}")

averaged_run() {  # averaged_run SEED
  local seed=$1 name="avg-s$1"
  seeded_stage "$name" "$seed" 4 "$init" train.max_tokens=1536000 scheduler=wsd scheduler.warmup_steps=20 \
    scheduler.decay_fraction=0 checkpoint.every_n_train_steps=25 checkpoint.keep_last=null
  local dir ckpts
  dir=$(ls -d outputs/"$name"/stage4-*)
  mapfile -t ckpts < <(ls "$dir"/checkpoints/step*.ckpt | sort | tail -8)
  mkdir -p "outputs/$name/merged"
  OMP_NUM_THREADS=1 python -m minimath.average "ckpts=[${ckpts[6]},${ckpts[7]}]" out="outputs/$name/merged/avg2.ckpt"
  OMP_NUM_THREADS=1 python -m minimath.average "ckpts=[$(IFS=,; echo "${ckpts[*]:4:4}")]" \
    out="outputs/$name/merged/avg4.ckpt"
  OMP_NUM_THREADS=1 python -m minimath.average "ckpts=[$(IFS=,; echo "${ckpts[*]}")]" \
    out="outputs/$name/merged/avg8.ckpt"
  OMP_NUM_THREADS=1 python -m minimath.average "ckpts=[$(IFS=,; echo "${ckpts[*]}")]" ema=0.8 \
    out="outputs/$name/merged/ema8.ckpt"
  for merged in avg2 avg4 avg8 ema8; do
    OMP_NUM_THREADS=1 python eval.py ckpt="outputs/$name/merged/$merged.ckpt" "tasks=[arithmetic,equations]" \
      hydra.run.dir="outputs/$name/eval-$merged" >> "outputs/$name.log" 2>&1
  done
  decay_arm "$seed" "$dir"
  OMP_NUM_THREADS=1 python experiments/stream_loss.py --config "$dir/.hydra/config.yaml" --first 12000 --count 1600 \
    "$dir/checkpoints/final.ckpt" outputs/"$name"/merged/{avg2,avg4,avg8,ema8}.ckpt \
    "$(ls outputs/avgdecay-s"$seed"/stage4-*/checkpoints/final.ckpt)" > "outputs/$name/stream_loss.json"
}

decay_arm() {  # decay_arm SEED STABLE_DIR: the alternative to merging, a WSD decay of the last 50 steps (128,000
  # tokens, exp to 10%) branched from the same run's step-550 checkpoint: it ends at the same step and data position
  seeded_stage "avgdecay-s$1" "$1" 4 "$init" scheduler=wsd branch_from="$2/checkpoints/step0000550.ckpt" \
    scheduler.decay_tokens=128000 scheduler.shape=exp scheduler.final_ratio=0.1
}

for seed in ${seeds[*]}; do
  averaged_run "$seed" &
  if (( $(jobs -r | wc -l) >= 2 )); then wait -n; fi
done
wait
python experiments/checkpoint_averaging/report.py
