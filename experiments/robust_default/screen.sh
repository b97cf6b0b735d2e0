#!/usr/bin/env bash
# One screen of a stage-4 setting (issue 23): stage 4 alone, from seed SEED's fp32 stage-3 checkpoint of the
# default curriculum, in fp32, then its held-out row, appended to $SCREENS (default /tmp/robust/screens.txt).
#   bash experiments/robust_default/screen.sh NAME SEED STAGE3_FINAL_CKPT [hydra overrides...]
# The stage-3 checkpoints: python train.py seed=SEED stage=N hardware.precision=32-true paths.runs=/tmp/robust/runs
# for N = 1, 2, 3 (stages 1-3 do not depend on stage 4's settings).
set -euo pipefail
cd "$(dirname "$0")/../.."
name=$1; seed=$2; init=$3; shift 3
runs=${SCREEN_RUNS:-/tmp/robust/screens}
mkdir -p "$runs"
start=$(date +%s)
python train.py seed="$seed" stage=4 hardware.precision=32-true paths.runs="$runs" run_name="$name-s$seed" \
  init_from="$init" "$@" > "$runs-$name-s$seed.log" 2>&1
seconds=$(( $(date +%s) - start ))
dir=$(ls -d "$runs/$name-s$seed"/stage4-*)
python experiments/robust_default/evaluate_stage4.py "$dir" seed="$seed" "$@" | grep '^ROW' \
  | sed "s/^ROW/$name seed=$seed train_s=$seconds/" | tee -a "${SCREENS:-/tmp/robust/screens.txt}"
