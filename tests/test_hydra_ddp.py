"""DDP ranks under Hydra: a multirun job's extra ranks run that one job, never the whole sweep again."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from hierarchicalvlm.run import hydra_ddp

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


def test_a_ddp_sweep_runs_every_job_on_two_ranks_and_job_0_matches_one_process(tmp_path: Path) -> None:
    """Two DDP jobs (gloo, 2 CPU processes each) in one sweep: two job folders (each with its config and last.ckpt),
    both completed on 2 ranks, and InfoNCE over the global batch of 16 (chance ln 16 = 2.77; per-rank batches of 8
    would give ln 8 = 2.08).

    Job 0 (full attention) then matches one process at the same global batch (run in-process here): two optimiser
    steps on 32 samples in a fixed order, 2 x 8 against 16. The same samples form each global batch
    (data.shuffle=false), InfoNCE runs over the gathered batch and the logged losses are averaged over ranks, so
    every step's losses must agree, and the updated models must score the validation set alike (synced metrics)."""
    import csv
    import json
    import math

    from hierarchicalvlm.run.job import Job
    from hierarchicalvlm.run.pipeline import run

    from .conftest import TINY, job_config_from, run_train_py

    tiny = [o for o in TINY if not o.startswith(("trainer.", "data.batch_size", "data.num_train", "data.num_val"))]
    common = [*tiny, "data.num_train=32", "data.num_val=16", "trainer.max_steps=2", "trainer.log_every_n_steps=1",
              "trainer.precision=32-true", "test=false", "logger=csv", "data.shuffle=false"]
    sweep = tmp_path / "sweep"
    result = run_train_py(["-m", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=8",
                           "attention=full,performer", *common, f"hydra.sweep.dir={sweep}"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["status"] == "completed", summary.get("error")
        assert summary["throughput"]["world_size"] == 2
        assert summary["metrics"]["train/contrastive_loss"] > 0.5 * (math.log(8) + math.log(16))
        assert (sweep / job / "checkpoints" / "last.ckpt").exists() and (sweep / job / ".hydra" / "config.yaml").exists()

    one_dir = tmp_path / "one"
    outcome = Job(job_config_from([*common, "trainer=cpu", "data.batch_size=16", "attention=full"], one_dir), run).execute()
    assert outcome.status == "completed", outcome.error
    runs = {"one": one_dir, "ddp": sweep / "0"}
    metrics, losses = {}, {}
    for name, folder in runs.items():
        metrics[name] = json.loads((folder / "summary.json").read_text())["metrics"]
        rows = csv.DictReader((folder / "csv" / "metrics.csv").open())
        losses[name] = [(int(r["step"]), float(r["train/qa_loss"]), float(r["train/contrastive_loss"]))
                        for r in rows if r.get("train/qa_loss")]
    assert [step for step, *_ in losses["one"]] == [0, 1], losses["one"]
    for (step, qa_one, con_one), (_, qa_ddp, con_ddp) in zip(losses["one"], losses["ddp"], strict=True):
        assert abs(qa_one - qa_ddp) < 1e-4 and abs(con_one - con_ddp) < 1e-4, (step, losses)
    one, ddp = metrics["one"], metrics["ddp"]
    for key in ("val/qa_acc", "val/t2v_r1", "val/v2t_r5"):
        assert abs(one[key] - ddp[key]) < 1e-6, (key, one[key], ddp[key])
