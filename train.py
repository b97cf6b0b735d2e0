"""Train a MiniMATH model: `python train.py [model=...] [stage=N] [batch=...] [hardware=...] [key=value ...]`."""

import sys

import hydra
from omegaconf import DictConfig

from minimath.cli import quote_numeric_choices
from minimath.errors import exit_on_user_error
from minimath.training import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    sys.argv = quote_numeric_choices(sys.argv)
    main()
