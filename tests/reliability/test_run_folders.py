"""Run folders never collide and a job has one runner (formerly: two runs started in the same second shared a
folder and overwrote each other; the same sweep started twice ran a job twice and marked a completed job failed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock
from omegaconf import OmegaConf

import hierarchicalvlm.run.resolvers as resolvers
from hierarchicalvlm.run.result import RunResult
from hierarchicalvlm.run.job import LOCK_FILE, Job, JobBusyError
from hierarchicalvlm.run.summary import read_summary, write_json_atomic

from ..conftest import compose_config
from .conftest import job_config


def never_runs(cfg):
    pytest.fail("a job another process is running was run again")


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path: Path, monkeypatch) -> None:
    cfg = compose_config([], tmp_path)
    assert "hvlm.fresh_dir" in OmegaConf.to_container(cfg.hydra.run)["dir"]  # what hydra.run.dir resolves through
    first = cfg.hydra.run.dir
    assert cfg.hydra.run.dir == first and Path(first).is_dir()  # claimed once per process, then remembered
    monkeypatch.setattr(resolvers, "_claimed", {})  # a second process, started in the same second
    second = cfg.hydra.run.dir  # (the same config object: Hydra's ${now:} gives the same second)
    assert second == f"{first}_2" and Path(second).is_dir()


def test_a_second_copy_of_a_sweep_skips_the_job_another_process_runs(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "summary.json", {"status": "running", "attempt": 1})
    before = (tmp_path / "summary.json").read_bytes()
    with FileLock(tmp_path / LOCK_FILE):  # held by the first copy of the sweep
        outcome = Job(job_config(tmp_path, multirun=True), never_runs).execute()
    assert outcome.status == "busy" and (tmp_path / "summary.json").read_bytes() == before
    # once the first copy is done, the job is free again
    Job(job_config(tmp_path, multirun=True), lambda cfg: RunResult()).execute()
    assert read_summary(tmp_path)["status"] == "completed"


def test_a_single_run_refuses_a_folder_in_use(tmp_path: Path) -> None:
    with FileLock(tmp_path / LOCK_FILE), pytest.raises(JobBusyError, match=f"run folder {tmp_path} is in use"):
        Job(job_config(tmp_path), never_runs).execute()
