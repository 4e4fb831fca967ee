"""Helpers of the reliability tests: tiny in-process runs, and callbacks that act at a given training step
(send a signal, copy the checkpoint a ``kill -9`` would leave behind). Tests add them to a run with
``+callbacks.<name>._target_=tests.reliability.conftest.<Class>``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from ..conftest import TINY, job_config_from

# TINY, plus: 2 training and 1 validation batch per epoch (2 epochs), no FLOP counting, no test, every step logged
FAST = [*TINY, "debug=limit", "data.num_train=16", "trainer.limit_val_batches=1", "callbacks.throughput=null",
        "test=false", "trainer.log_every_n_steps=1"]
HERE = "tests.reliability.conftest"


def job_config(tmp_path: Path, *overrides: str, multirun: bool = False) -> DictConfig:
    """A composed FAST config as a job of ``train.py`` sees it (``multirun``: one job of a sweep)."""
    return job_config_from([*FAST, *overrides], tmp_path, multirun)


class SendSignal(L.Callback):
    """Sends ``signum`` to this process as training step ``step`` begins (the step still runs to its end)."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class SnapshotLastCheckpoint(L.Callback):
    """Copies ``checkpoints/last.ckpt`` to ``target`` as step ``step`` begins: the file a ``kill -9`` at that
    moment would leave (written after step ``step - 1`` by ``last_checkpoint.every_n_train_steps=1``)."""

    def __init__(self, step: int, target: str) -> None:
        self.step, self.target = step, target

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            shutil.copy(Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt", self.target)
