#!/usr/bin/env bash
# Does evaluation score the benchmarks' own answer formats right? Gold answers as the files write them must all
# count correct and gold + 1 must all count wrong, under both protocols. Needs the public test files at the paths of
# conf/task/*.yaml (data/eval/...); pass other paths as NAME=PATH arguments.
#   bash experiments/eval_formats/run.sh [NAME=PATH ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$#" -eq 0 ]; then
  set -- gsm8k=data/eval/gsm8k/test.jsonl math23k=data/eval/math23k/test.json \
         ape210k=data/eval/ape210k/test.ape.json math=data/eval/MATH/test.jsonl
fi
args=()
for spec in "$@"; do args+=(--task "$spec"); done
python experiments/eval_formats/measure.py "${args[@]}" --out experiments/eval_formats/results.json
