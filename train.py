"""Entry point: ``python train.py [group=option ...] [key=value ...]`` (Hydra). See README.md."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from mmrec.console import clean_errors, is_verbose, quiet, run_cli

quiet(is_verbose())  # before Lightning and torch warn at import or set-up (``verbose=true`` re-enables per run)


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from mmrec.run import train

    with clean_errors():
        return train(cfg)


if __name__ == "__main__":
    sys.exit(run_cli(main))
