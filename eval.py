"""Evaluate, re-score or try a model: see conf/eval.yaml for the three modes."""

import hydra
from omegaconf import DictConfig

from minimath.errors import exit_on_user_error
from minimath.log import quiet_third_party
from minimath.eval.modes import main as run


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    run(cfg)


if __name__ == "__main__":
    main()
