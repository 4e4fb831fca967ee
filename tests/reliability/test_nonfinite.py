"""A diverging run stops at its first non-finite loss, says so, saves nothing non-finite and exits non-zero; the
sweep report marks it diverged (formerly: lr=1e6 ran to the end, "completed", a NaN checkpoint kept as best)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from hierarchicalvlm.run.job import Job
from hierarchicalvlm.ablation.report import AblationTable, cell_text, render_markdown
from hierarchicalvlm.run.summary import read_summary
from hierarchicalvlm.callbacks import BestCheckpoint, NonFiniteError, NonFiniteGuard
from hierarchicalvlm.run.cli import run_job
from hierarchicalvlm.run.checkpoint_io import read_checkpoint

from .conftest import job_config


def test_lr_1e6_stops_at_the_first_nan_loss_and_saves_nothing_non_finite(tmp_path: Path, capsys) -> None:
    cfg = job_config(tmp_path, "model.optimizer.lr=1e6", "model.scheduler.warmup_steps=1", "logger=csv",
                     "callbacks.last_checkpoint.every_n_train_steps=1", "callbacks.last_checkpoint.every_n_epochs=null")
    with pytest.raises(SystemExit) as exit_:
        run_job(cfg)
    assert exit_.value.code == 1
    # the first non-finite quantity of step 1 stops the run: the loss, or (a step earlier than the loss would
    # show it) the gradient norm
    err = capsys.readouterr().err
    assert re.search(r"diverged: non-finite (loss|gradient norm) at step 1 \(epoch 0\)", err), err[-500:]
    summary = read_summary(tmp_path)
    assert summary["status"] == "diverged" and summary["error"]["type"] == "NonFiniteError"
    assert re.match(r"non-finite (loss|gradient norm) at step 1 \(epoch 0\)", summary["error"]["message"])
    # checkpoints were written every step: the last one is the step before the NaN, all finite
    checkpoints = list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert [p.name for p in checkpoints] == ["last.ckpt"]
    last = read_checkpoint(checkpoints[0])
    assert last["global_step"] == 1 and all(torch.isfinite(t).all() for t in last["state_dict"].values())


def test_in_a_sweep_a_diverged_job_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    def diverges(cfg):
        raise NonFiniteError("loss", 7, 1, ": train loss nan")

    outcome = Job(job_config(tmp_path, multirun=True), diverges).execute()
    assert outcome.status == "diverged" and isinstance(outcome.error, NonFiniteError)
    assert read_summary(tmp_path)["status"] == "diverged"


def test_the_report_marks_diverged_jobs() -> None:
    def job(status, attention, error=None):
        return {"job": attention, "status": status, "attention": attention, "num_frames": 8, "seq_len": 32,
                "seed": 0, "metrics": {"test/qa_acc": 0.5} if status == "completed" else {},
                "throughput": {"tokens_per_sec_median": 100.0}, "peak_memory": None,
                "error": {"type": "NonFiniteError", "message": error} if error else None}

    summaries = [job("completed", "full"), job("diverged", "performer", "non-finite loss at step 3 (epoch 0)")]
    table = AblationTable.from_summaries(summaries)
    assert cell_text(table, "performer", 32, []).startswith("✗ diverged: NonFiniteError: non-finite loss at step 3")
    assert "1 completed, 0 failed, 1 diverged, 0 unfinished" in render_markdown(table, "t", None, [])


def fake_trainer(**kwargs) -> SimpleNamespace:
    return SimpleNamespace(world_size=1, global_step=5, current_epoch=2, precision_plugin=object(), **kwargs)


def test_an_infinite_gradient_with_a_finite_loss_stops_before_the_optimizer_step() -> None:
    model = torch.nn.Linear(2, 1)
    loss = model(torch.ones(1, 2)).sum()
    loss.backward()
    model.weight.grad[0, 0] = float("inf")
    guard, trainer = NonFiniteGuard(), fake_trainer()
    module = SimpleNamespace(device=torch.device("cpu"))
    guard.on_before_backward(trainer, module, loss)
    with pytest.raises(NonFiniteError, match=r"non-finite gradient norm at step 5 \(epoch 2\)"):
        guard.on_before_optimizer_step(trainer, module, torch.optim.SGD(model.parameters(), lr=0.1))
    model.weight.grad.zero_()
    guard.on_before_backward(trainer, module, loss)
    guard.on_before_optimizer_step(trainer, module, torch.optim.SGD(model.parameters(), lr=0.1))  # finite: goes on


def test_a_checkpoint_with_non_finite_weights_is_never_written() -> None:
    with pytest.raises(NonFiniteError, match="non-finite weights"):
        NonFiniteGuard().on_save_checkpoint(fake_trainer(), None, {"state_dict": {"w": torch.tensor([1.0, math.nan])}})


def test_a_nan_score_is_never_kept_as_best(tmp_path: Path) -> None:
    callback = BestCheckpoint(dirpath=tmp_path, monitor="val/qa_acc", mode="max", save_top_k=1)
    callback._save_monitor_checkpoint = lambda *a: pytest.fail("a NaN score was considered for the top-k")
    callback._save_topk_checkpoint(fake_trainer(), {"val/qa_acc": torch.tensor(math.nan)})
    assert callback.best_model_path == "" and callback.best_k_models == {}


def test_anomaly_detection_is_one_override(tmp_path: Path) -> None:
    cfg = job_config(tmp_path, "trainer.detect_anomaly=true")
    assert instantiate(cfg.trainer, logger=False, enable_checkpointing=False)._detect_anomaly is True
