"""Train a MiniMATH model.

    python train.py                          the whole curriculum (every stage in order), then held-out eval
    python train.py stage=3 batch=1.63M      one stage, from the previous stage's final checkpoint
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from minimath.config import quote_numeric_choices
from minimath.curriculum import run_curriculum, wants_curriculum
from minimath.errors import exit_on_user_error
from minimath.io import remove_if_only
from minimath.log import quiet_third_party
from minimath.training import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    out = Path(cfg.paths.output_dir)
    try:
        if wants_curriculum(cfg) and not cfg.dry_run:
            run_curriculum(cfg, __file__)
        else:
            run(cfg)
    finally:  # a run that failed (or a dry run) before writing anything leaves no stage directory behind
        remove_if_only(out, (".hydra", "train.log"))


if __name__ == "__main__":
    sys.argv = quote_numeric_choices(sys.argv)
    main()
