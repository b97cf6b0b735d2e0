"""Train a MiniMATH model.

python train.py                          the whole curriculum (every stage in order), then held-out eval
python train.py stage=3 batch=1.63M      one stage, from the previous stage's final checkpoint
"""

import hydra
from omegaconf import DictConfig

from minimath.config import run_entry_point, warn_deprecated_choices
from minimath.errors import exit_on_user_error
from minimath.schema import register_configs


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    # imported here, after composition: `--help`, `--cfg` and a bad override answer without loading torch
    from minimath.curriculum import run_curriculum, wants_curriculum
    from minimath.log import quiet_third_party
    from minimath.runs import remove_if_unused
    from minimath.training import objective_value, run

    quiet_third_party()
    warn_deprecated_choices()
    try:
        if wants_curriculum(cfg) and not cfg.dry_run:
            run_curriculum(cfg, __file__)
        else:
            run(cfg)
            if cfg.objective is not None and not cfg.dry_run:
                return objective_value(cfg)  # to a hyper-parameter sweeper (hparams_search=...)
    finally:  # a run that failed (or a dry run) before its first checkpoint leaves no directory behind
        remove_if_unused(cfg.paths.output_dir)


if __name__ == "__main__":
    register_configs()
    run_entry_point(main, "config")
