"""The job wrapper in-process: summaries, single-run vs multirun failures, skipping, and the sweep configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hierarchicalvlm.run.result import RunResult
from hierarchicalvlm.run.job import Job
from hierarchicalvlm.run.summary import read_summary, write_json_atomic
from hierarchicalvlm.run.pipeline import run
from hierarchicalvlm.run.config_checks import ConfigError

from ..conftest import TINY, compose_config, job_config_from


def job_config(tmp_path: Path, *overrides: str, multirun: bool = False):
    """A composed config as a job sees it; ``multirun`` marks it as one job of a sweep."""
    return job_config_from([*TINY, *overrides], tmp_path, multirun)


def never_runs(cfg):
    pytest.fail("the job ran although it should have been skipped")


def test_a_single_run_config_error_is_recorded_and_still_raised(tmp_path: Path) -> None:
    cfg = job_config(tmp_path, "model.net.dim=30", "model.net.num_heads=4")
    with pytest.raises(ConfigError, match="divisible"):
        Job(cfg, run).execute()
    summary = read_summary(tmp_path)
    assert summary["status"] == "failed" and summary["error"]["type"] == "ConfigError"
    assert "model.net.dim (30)" in summary["error"]["message"] and summary["attention"] == "full"


def test_in_a_multirun_a_config_error_is_returned_not_raised(tmp_path: Path) -> None:
    cfg = job_config(tmp_path, "attention=strided", "attention.stride=4096", multirun=True)
    outcome = Job(cfg, run).execute()
    assert outcome.status == "failed" and isinstance(outcome.error, ConfigError)
    summary = read_summary(tmp_path)
    assert summary["status"] == "failed" and "attention.stride" in summary["error"]["message"]
    assert summary["attention"] == "strided" and summary["seq_len"] == 8 * 4


def test_a_completed_job_is_skipped_only_in_a_multirun(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "summary.json", {"status": "completed", "metrics": {"val/qa_acc": 0.5}})
    outcome = Job(job_config(tmp_path, multirun=True), never_runs).execute()
    assert outcome.status == "skipped" and outcome.metrics == {"val/qa_acc": 0.5}
    calls = []
    Job(job_config(tmp_path), lambda cfg: calls.append(cfg) or RunResult()).execute()
    assert len(calls) == 1 and read_summary(tmp_path)["status"] == "completed"


def test_sweep_resume_false_redoes_completed_jobs(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "summary.json", {"status": "completed", "metrics": {}})
    calls = []
    cfg = job_config(tmp_path, "sweep_resume=false", multirun=True)
    Job(cfg, lambda cfg: calls.append(cfg) or RunResult({"val/qa_acc": 1.0})).execute()
    assert len(calls) == 1 and read_summary(tmp_path)["attempt"] == 1


def test_an_unfinished_job_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "summary.json", {"status": "running", "attempt": 1})
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"not read by the fake run")
    seen = []
    cfg = job_config(tmp_path, multirun=True)
    Job(cfg, lambda cfg: seen.append(cfg.ckpt_path) or RunResult()).execute()
    last = str(tmp_path / "checkpoints" / "last.ckpt")
    assert seen == [last]
    summary = read_summary(tmp_path)
    assert summary["resumed_from"] == last and summary["attempt"] == 2 and summary["config"]["ckpt_path"] == last


def test_summaries_are_written_atomically_and_bad_ones_ignored(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"status": "completed", "value": float("nan")})
    assert json.loads(path.read_text()) == {"status": "completed", "value": None}  # JSON has no NaN

    import hierarchicalvlm.run.summary as summary_module

    def interrupted_dump(data, f, **kwargs):
        f.write('{"status": "fail')
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(summary_module.json, "dump", interrupted_dump)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(path, {"status": "failed"})
    assert read_summary(tmp_path)["status"] == "completed" and not list(tmp_path.glob("*.tmp"))
    path.write_text('{"status": "runn')
    assert read_summary(tmp_path) is None


@pytest.mark.parametrize("experiment", ["long_seq_ablation", "long_seq_ablation_gpu"])
def test_the_ablation_experiments_define_a_stable_resumable_grid(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    params = cfg.hydra.sweeper.params
    assert set(params.attention.split(",")) == {"full", "local_global", "performer", "mamba", "strided"}
    sweep = OmegaConf.to_container(cfg.hydra.sweep)  # unresolved: the interpolations themselves
    assert sweep["subdir"] == "${hydra.job.override_dirname}"
    assert sweep["dir"].endswith("/multiruns/${sweep_name}") and cfg.sweep_name == experiment
    assert {"experiment", "logger", "paths.log_dir"} <= set(cfg.hydra.job.config.override_dirname.exclude_keys)
    frames = [int(n) for n in str(params["data.num_frames"]).split(",")]
    tokens = [n * (cfg.data.frame_size // cfg.model.net.patch_size) ** 2 for n in frames]
    if experiment.endswith("gpu"):
        assert min(tokens) <= 1024 and max(tokens) >= 65536 and cfg.trainer.precision == "bf16-mixed"
        assert cfg.trainer.accelerator == "gpu" and 100 <= cfg.trainer.max_steps <= 1000
    else:
        assert cfg.trainer.accelerator == "cpu" and max(tokens) <= 1024
        # every mechanism's window/stride fits the shortest video
        assert min(tokens) > 64


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "submitit_slurm"])
def test_the_cluster_launchers_compose_with_the_sweep(launcher: str, tmp_path: Path) -> None:
    cfg = compose_config(["experiment=long_seq_ablation", f"hydra/launcher={launcher}"], tmp_path)
    assert cfg.hydra.runtime.choices["hydra/launcher"] == launcher
    assert "Launcher" in cfg.hydra.launcher._target_
