"""Evaluate, re-score or try a model: see conf/eval.yaml for the three modes."""

import hydra
from omegaconf import DictConfig

from minimath.config import run_entry_point
from minimath.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    # imported here, after composition: `--help` and a bad override answer without loading torch
    from minimath.eval.modes import main as run
    from minimath.log import quiet_third_party

    quiet_third_party()
    run(cfg)


if __name__ == "__main__":
    run_entry_point(main, "eval")
