"""The held-out row of one stage-4 run, exactly as the curriculum's table computes it (`minimath.curriculum.
evaluate_stage`: 200 distinct items per set, drawn by the data config's own generators with these overrides).

    python experiments/robust_default/evaluate_stage4.py STAGE_DIR [hydra overrides of the run...]
"""

import json
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from minimath.curriculum import evaluate_stage
from minimath.schema import register_configs

CONF = Path(__file__).resolve().parents[2] / "conf"

if __name__ == "__main__":
    stage_dir, *overrides = sys.argv[1:]
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    print("ROW", json.dumps(evaluate_stage(Path(stage_dir), "4", "2.5K", int(cfg.curriculum_eval_items), cfg.data)))
