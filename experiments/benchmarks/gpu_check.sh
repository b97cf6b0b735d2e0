#!/usr/bin/env bash
# The GPU check (the standing order; issue 27, item 5): one script to run whenever a GPU is lent, about 10 minutes
# on one H100/H200. Every command's output goes to OUT/<step>.log, the machine to OUT/machine.txt; the summary lines
# (tokens/s, MFU, peak memory) are printed at the end, ready for experiments/benchmarks/README.md.
#   bash experiments/benchmarks/gpu_check.sh [OUT]        # OUT defaults to outputs/gpu_check; REPEATS=1 for short leases
# Steps, in the order they run (on one H200, REPEATS=1: about 8 minutes in all, 2026-12-04):
#   1. bench_1p5b:    the 1.5B preset's training step against a plain PyTorch step (bf16 autocast, fused AdamW):
#                     tokens/s, MFU against the H100/H200 dense bf16 peak (conf/hardware/gpu.yaml), peak memory
#   2. fsdp_train, fsdp_resume: `model=small hardware=fsdp` (FSDP2, bf16 parameters) on one GPU, 20 steps with a
#                     sharded checkpoint every 10; then the run is set back to its step-10 checkpoint and resumed to
#                     step 20 (both logs' last step line printed: the losses should agree to bf16 GPU reduction order).
#                     The small preset keeps each sharded save near 2 GB (the 1.5B's would be ~18 GB with AdamW state).
#   3. train_1p5b:    50 optimizer steps of `model=minimath_1p5b hardware=gpu` on the embedded data tokenized with
#                     the real Qwen vocabulary (151,936 rows), 32,768 tokens/step, from scratch; tokens/s from its log
#   4. bench_default: the embedded default's shape (nano, 20 x 128-token micro-batches) on the GPU
# COMPILE=1 adds bench_1p5b_compile after step 1: the same bench with compile=true (not yet run on a GPU).
# The device image lacks some pure-Python packages: experiments/benchmarks/gpu_carry.sh builds them for `carry`.
# A failed step is reported and the check goes on (the resume only after its training run); it exits 1 if any failed.
# Without a GPU every step stops at once with train.py's one-line error; nothing here runs on a CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-outputs/gpu_check}
mkdir -p "$out"
{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  echo "commit as sent: ${MINIMATH_COMMIT:-not given}"  # the device's copy may carry another .git than the sender's
  git rev-parse HEAD 2> /dev/null || echo "commit: not a git checkout"
  git status --porcelain 2> /dev/null | head -5 || true
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not available"
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" || true
  python -c "import lightning; print('lightning', lightning.__version__)" || true
  nproc
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

failed=()
step() {  # step NAME COMMAND...: run it, keep its log; a failure is reported and the check goes on to the next step
  local name=$1
  shift
  echo "== $name: $*"
  if ! "$@" > "$out/$name.log" 2>&1; then
    echo "== $name failed: last lines of $out/$name.log"
    tail -n 20 "$out/$name.log"
    failed+=("$name")
    return 1
  fi
}

# REPEATS=1 halves the 1.5B bench (each repeat builds the 1.5B model twice, ~75 s each on an H200) for short leases
step bench_1p5b python -m minimath.bench model=minimath_1p5b hardware=gpu micro_batch=8 seq_len=2048 steps=20 \
  warmup=5 "repeats=${REPEATS:-3}" || true

if [[ ${COMPILE:-0} == 1 ]]; then  # the 1.5B step with torch.compile (train.compile): adds a compile per variant run
  step bench_1p5b_compile python -m minimath.bench model=minimath_1p5b hardware=gpu micro_batch=8 seq_len=2048 \
    steps=20 warmup=5 "repeats=${REPEATS:-3}" compile=true || true
fi

fsdp=(python train.py model=small hardware=fsdp hardware.devices=1 hardware.micro_batch=8 stage=4 batch=32768
  train.max_tokens=655360 checkpoint.every_n_train_steps=10 init_from=none run_name=gpu-check-fsdp
  "paths.runs=$out/runs" "paths.data_root=$out/prepared")
if step fsdp_train "${fsdp[@]}"; then
  ckpts=$(ls -d "$out"/runs/gpu-check-fsdp/stage4-*/checkpoints)
  ls "$ckpts"/step0000010.ckpt/*.distcp > /dev/null  # sharded: one .distcp file per rank
  rm "$ckpts/final.ckpt" && rm -rf "$ckpts/step0000020.ckpt" && ln -sfn step0000010.ckpt "$ckpts/last.ckpt"
  step fsdp_resume "${fsdp[@]}" && { grep -q "resuming" "$out/fsdp_resume.log" || failed+=(fsdp_resume_no_resume); }
fi

step train_1p5b python train.py model=minimath_1p5b hardware=gpu stage=4 batch=32768 train.max_tokens=1638400 \
  init_from=none run_name=gpu-check "paths.runs=$out/runs" "paths.data_root=$out/prepared" || true
step bench_default python -m minimath.bench model=nano hardware=gpu micro_batch=20 seq_len=128 steps=40 warmup=5 \
  "repeats=${REPEATS:-3}" || true

echo "== summary ($out)"
grep -h -E "tokens/s|MFU|peak" "$out"/bench_*.log 2> /dev/null | tail -n 30 || true
grep -h "step 50/50" "$out/train_1p5b.log" 2> /dev/null | tail -n 1 || true
grep -h "step 20/20" "$out/fsdp_train.log" "$out/fsdp_resume.log" 2> /dev/null | tail -n 2 || true
if ((${#failed[@]})); then
  echo "== failed: ${failed[*]}"
  exit 1
fi
