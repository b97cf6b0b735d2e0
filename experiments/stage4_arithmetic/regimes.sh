#!/usr/bin/env bash
# Round 3: round 1's regimes p3-p6 again, at today's LR (3e-3, 20-step warmup, decay over the last 25%) and with
# the fixed prompts, 3 seeds each. Stage 4 of data=embedded from scratch on the default nano (4 layers x 128,
# 128-token windows); the seed orders the mixture and initialises the model, the generated sources keep seed 1234.
# A regime that changes the operators reads its own prepared copy of the data (data/prepared/s4a-*), so two runs
# at a time never re-prepare a shard under each other. Run from the repository root:
#   bash experiments/stage4_arithmetic/regimes.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/seeded_runs.sh
seeds=("${@:-1 2 3}")
fixed=()
for source in "${SOURCES[@]}"; do fixed+=("data.sources.$source.seed=1234"); done

# name -> operators of basic_math (and so of its held-out set)
declare -A OPS=([4op]='[+,-,"*",/]' [pm]='[+,-]')
for data in "${!OPS[@]}"; do
  python -m minimath.data.prepare "data.dir=data/prepared/s4a-$data" \
    "data.sources.basic_math.generator.operators=${OPS[$data]}" "${fixed[@]}" > "outputs/s4a-prepare-$data.log"
done

regime() {  # regime NAME SEED
  local name=$1 seed=$2 args
  case $name in
    p3) args=("data.dir=data/prepared/s4a-4op" "data.sources.basic_math.generator.operators=${OPS[4op]}"
              batch=1280 data.stages.4.tokens=1000000) ;;
    p4) args=("data.dir=data/prepared/s4a-pm" "data.sources.basic_math.generator.operators=${OPS[pm]}"
              batch=2560 data.stages.4.tokens=1000000) ;;
    p5) args=("data.dir=data/prepared/s4a-pm" "data.sources.basic_math.generator.operators=${OPS[pm]}"
              batch=1280 data.stages.4.tokens=1500000) ;;
    p6) args=("data.dir=data/prepared/s4a-pm" "data.sources.basic_math.generator.operators=${OPS[pm]}"
              batch=1024 data.stages.4.tokens=1700000
              'data.stages.4.mix=[{source:basic_math,share:1.0}]') ;;
  esac
  local start; start=$(date +%s)
  seeded_stage "s4a-$name-s$seed" "$seed" 4 none "${args[@]}"
  echo $(( $(date +%s) - start )) > "outputs/s4a-$name-s$seed/seconds"
}

for seed in ${seeds[*]}; do   # two lanes of about equal tokens: p6 + p3 (5.4M) beside p5 + p4 (5.0M)
  (regime p6 "$seed"; regime p3 "$seed") &
  (regime p5 "$seed"; regime p4 "$seed") &
  wait
  echo "seed $seed done"
done
python experiments/stage4_arithmetic/report.py
