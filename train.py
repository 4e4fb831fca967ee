"""Train (and test) a hierarchical video-language model.

    python train.py                                  # embedded data, full attention
    python train.py attention=performer              # pick the long-range mechanism
    python train.py -m attention=full,strided        # a multirun sweep
    python train.py train=false test=true ckpt_path=...   # evaluate a checkpoint
    python train.py --help                           # the config groups and their choices
"""

from __future__ import annotations

import faulthandler
import sys

import hydra
from omegaconf import DictConfig

from hierarchicalvlm.run.cli import quote_path_overrides, run_job


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


if __name__ == "__main__":
    faulthandler.enable()  # a process killed by a fatal signal (SIGSEGV, SIGABRT, ...) still prints its stack
    sys.argv = quote_path_overrides(sys.argv)
    main()
