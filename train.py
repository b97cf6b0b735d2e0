"""Train a MiniMATH model.

    python train.py                          the whole curriculum (every stage in order), then held-out eval
    python train.py stage=3 batch=1.63M      one stage, from the previous stage's final checkpoint
"""

import sys

import hydra
from omegaconf import DictConfig

from minimath.config import quote_numeric_choices
from minimath.curriculum import run_curriculum, wants_curriculum
from minimath.errors import exit_on_user_error
from minimath.training import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    if wants_curriculum(cfg) and not cfg.dry_run:
        run_curriculum(cfg, __file__)
    else:
        run(cfg)


if __name__ == "__main__":
    sys.argv = quote_numeric_choices(sys.argv)
    main()
