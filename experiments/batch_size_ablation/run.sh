#!/usr/bin/env bash
# The report's batch-size ablation (§5) at nano scale: stages 1-2 once, then stage 3 forked from the same
# stage-2 checkpoint with a 10x apart batch pair (256 and 2,560 tokens per step, as 163K and 1.63M in the report),
# then the report script. Run from the repository root: bash experiments/batch_size_ablation/run.sh
set -euo pipefail
RUN="run_name=batch-ablation"
python train.py stage=1 "$RUN" trainer.enable_progress_bar=false
python train.py stage=2 "$RUN" trainer.enable_progress_bar=false
python train.py --multirun stage=3 batch=256,2.5K "$RUN" trainer.enable_progress_bar=false
python experiments/batch_size_ablation/report.py --run outputs/batch-ablation
