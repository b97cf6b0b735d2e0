#!/usr/bin/env bash
# Interoperability check: export a stage-4 checkpoint to a transformers directory, run lm-evaluation-harness
# (--model hf, offline, local task files) and our eval.py on the same items with the same prompts, and compare item
# by item; every printed figure is saved next to this file (results.json, parity.json, diverging.json) with the
# machine it ran on (provenance.json). A pipeline of one run each, not a sweep. Run from the repository root:
#   bash experiments/interop/run.sh CKPT     e.g. the default run's outputs/nano-embedded/stage4-bs2.5K/checkpoints/final.ckpt
set -euo pipefail
cd "$(dirname "$0")/../.."
ckpt=${1:?usage: bash experiments/interop/run.sh CKPT (a stage-4 final.ckpt, e.g. of python train.py)}
here=experiments/interop
out=outputs/interop
rm -rf "$out/hf" "$out/lm_eval" "$out/ours"
mkdir -p "$out" && echo "$ckpt" > "$out/checkpoint.txt"   # which checkpoint the scripts below compare with
python -m minimath.export ckpt="$ckpt" out="$out/hf"
python "$here/make_items.py" "$ckpt" "$out/data"
# ours: the held-out arithmetic as eval.py draws it, and the GSM8K-format file zero-shot (standard protocol)
OMP_NUM_THREADS=2 python eval.py ckpt="$ckpt" "tasks=[arithmetic,gsm8k]" task=gsm8k task.path="$out/data/gsm8k_test.jsonl" \
  protocol.shots.gsm8k=0 hydra.run.dir="$out/ours"
# lm-evaluation-harness on the exported directory: the transformers model and tokenizer, nothing of ours
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=2 lm_eval --model hf \
  --model_args "pretrained=$out/hf,dtype=float32,max_length=128" \
  --tasks minimath_arithmetic,minimath_gsm8k_local --include_path "$here/tasks" \
  --device cpu --batch_size 1 --log_samples --output_path "$out/lm_eval"
python "$here/parity.py" --outputs "$out" | tee "$out/parity.json"
python "$here/compare.py" --outputs "$out"   # writes $here/results.json
python "$here/diverging.py" --outputs "$out" | tee "$out/diverging.json"
python - "$ckpt" "$out" "$here" <<'PY'
import json, sys
from pathlib import Path
from minimath import provenance
from minimath.io import atomic_write_json
ckpt, out, here = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
for name in ("parity", "diverging"):
    printed = [json.loads(line) for line in (out / f"{name}.json").read_text().splitlines() if line.startswith("{")]
    atomic_write_json(here / f"{name}.json", printed[0] if len(printed) == 1 else printed)
atomic_write_json(here / "provenance.json", {"checkpoint": ckpt, **provenance.session_record("32-true", "export and both harnesses in fp32")})
PY
