"""DDP ranks under Hydra: a multirun job's extra ranks run that one job, never the whole sweep again."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from hierarchicalvlm.utils import hydra_ddp

from .conftest import compose_config


def set_hydra(tmp_path: Path, overrides: list[str], mode: RunMode) -> None:
    cfg = compose_config(overrides, tmp_path)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.mode = mode
        cfg.hydra.overrides.task = overrides
        cfg.hydra.run.dir = str(tmp_path / "not-the-job-folder")
    HydraConfig.instance().set_config(cfg)


def test_a_multirun_rank_runs_only_its_job_in_its_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None)  # as under `python train.py`, not `python -m`
    monkeypatch.setattr("sys.argv", ["train.py", "-m", "attention=full,performer", "trainer=ddp"])
    set_hydra(tmp_path, ["attention=performer", "trainer=ddp"], RunMode.MULTIRUN)
    hydra_ddp.launch_ranks_per_job(resume_from=None)
    command, cwd = hydra_ddp.job_rank_command(local_rank=1)
    assert "-m" not in command and "attention=full,performer" not in command
    assert command[2:4] == ["attention=performer", "trainer=ddp"]
    assert f'hydra.run.dir="{tmp_path}"' in command and "hydra.output_subdir=null" in command
    assert not any(arg.startswith("ckpt_path=") for arg in command)


def test_a_resumed_job_passes_its_checkpoint_to_every_rank(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["train.py", "-m", "attention=full,performer"])
    set_hydra(tmp_path, ["attention=full", "ckpt_path=null"], RunMode.MULTIRUN)
    hydra_ddp.launch_ranks_per_job(resume_from=str(tmp_path / "checkpoints" / "last.ckpt"))
    try:
        command, _ = hydra_ddp.job_rank_command(local_rank=1)
    finally:
        hydra_ddp.launch_ranks_per_job(resume_from=None)
    assert [a for a in command if a.startswith("ckpt_path=")] == [f'ckpt_path="{tmp_path}/checkpoints/last.ckpt"']


def test_a_single_run_keeps_lightnings_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["train.py", "attention=full"])
    set_hydra(tmp_path, ["attention=full"], RunMode.RUN)
    command, _ = hydra_ddp.job_rank_command(local_rank=1)
    assert "attention=full" in command
    assert f'hydra.run.dir="{tmp_path / "not-the-job-folder"}"' in command


def test_lightnings_launchers_use_the_job_command() -> None:
    from lightning.pytorch.strategies.launchers import subprocess_script

    hydra_ddp.launch_ranks_per_job()
    assert subprocess_script._hydra_subprocess_cmd is hydra_ddp.job_rank_command
