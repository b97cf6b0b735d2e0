#!/usr/bin/env bash
# Interoperability check: export the default run's stage-4 checkpoint to a transformers directory, run
# lm-evaluation-harness (--model hf, offline, local task files) and our eval.py on the same items with the same
# prompts, and compare item by item. Needs the default run first (python train.py).
#   bash experiments/interop/run.sh            then the table: python experiments/interop/compare.py
set -euo pipefail
cd "$(dirname "$0")/../.."
ckpt=outputs/nano-embedded/stage4-bs2.5K/checkpoints/final.ckpt
out=outputs/interop
rm -rf "$out/hf" "$out/lm_eval" "$out/ours"
python -m minimath.export ckpt="$ckpt" out="$out/hf"
python experiments/interop/make_items.py "$ckpt" "$out/data"
# ours: the held-out arithmetic as eval.py draws it, and the GSM8K-format file zero-shot (standard protocol)
OMP_NUM_THREADS=2 python eval.py ckpt="$ckpt" "tasks=[arithmetic,gsm8k]" task=gsm8k task.path="$out/data/gsm8k_test.jsonl" \
  protocol.shots.gsm8k=0 hydra.run.dir="$out/ours"
# lm-evaluation-harness on the exported directory: the transformers model and tokenizer, nothing of ours
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=2 lm_eval --model hf \
  --model_args "pretrained=$out/hf,dtype=float32,max_length=128" \
  --tasks minimath_arithmetic,minimath_gsm8k_local --include_path experiments/interop/tasks \
  --device cpu --batch_size 1 --log_samples --output_path "$out/lm_eval"
python experiments/interop/parity.py --outputs "$out"
python experiments/interop/compare.py --outputs "$out"
python experiments/interop/diverging.py --outputs "$out"
