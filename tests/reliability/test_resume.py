"""A run resumed from the checkpoint a ``kill -9`` leaves logs bitwise the same losses as the run that was never
stopped, keeps the earlier attempt's logs and its best checkpoint (formerly: the shuffle order and the RNG were
not saved; metrics.csv of the first attempt was deleted; a resume into a new folder forgot the best score)."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from hierarchicalvlm.callbacks import BestCheckpoint
from hierarchicalvlm.run.model_identity import IDENTITY_KEY
from hierarchicalvlm.run.pipeline import run
from hierarchicalvlm.run.checkpoint_io import read_checkpoint

from .conftest import HERE, job_config

# 2 epochs of 2 shuffled batches, dropout on (it draws from the global RNG), a checkpoint after every step
RUN = ["trainer.max_epochs=2", "logger=csv", "model.net.dropout=0.1", "data.shuffle=true",
       "callbacks.last_checkpoint.every_n_train_steps=1", "callbacks.last_checkpoint.every_n_epochs=null"]
KILLED_AT = 1  # mid-epoch 0: the resumed run skips a batch of epoch 0, then crosses into epoch 1


def logged(path: Path, key: str) -> dict[int, str]:
    """``{step: value}`` of one metric in a CSV log, values as written (so equal means bitwise equal)."""
    return {int(row["step"]): row[key] for row in csv.DictReader(open(path)) if row.get(key)}


def test_a_killed_run_resumes_bitwise_and_keeps_its_earlier_logs(tmp_path: Path) -> None:
    snapshot = tmp_path / "killed.ckpt"
    run(job_config(tmp_path, *RUN, f"+callbacks.snapshot._target_={HERE}.SnapshotLastCheckpoint",
                   f"+callbacks.snapshot.step={KILLED_AT}", f"+callbacks.snapshot.target={snapshot}"))
    first = tmp_path / "csv" / "metrics.csv"
    uninterrupted = logged(first, "train/loss")
    assert sorted(uninterrupted) == list(range(4))

    saved = read_checkpoint(snapshot)  # weights-only; plain hyper-parameters; the model and data position recorded
    assert saved["global_step"] == KILLED_AT and isinstance(saved["hyper_parameters"]["net"], dict)
    assert saved[IDENTITY_KEY]["attention"]["name"] == "full"

    run(job_config(tmp_path, *RUN, f"ckpt_path={snapshot}"))  # resumed into the same folder, as a sweep does
    kept = tmp_path / "csv" / "metrics.1.csv"
    assert logged(kept, "train/loss") == uninterrupted  # the first attempt's log, moved aside, complete
    resumed = logged(first, "train/loss")
    assert sorted(resumed) == list(range(KILLED_AT, 4))
    assert resumed == {step: uninterrupted[step] for step in resumed}
    assert logged(first, "val/loss") == {s: v for s, v in logged(kept, "val/loss").items() if s >= KILLED_AT}


def test_the_best_checkpoint_survives_a_resume_into_a_new_folder(tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "checkpoints", tmp_path / "new" / "checkpoints"
    old.mkdir(parents=True)
    (old / "epoch_001.ckpt").write_bytes(b"the best weights")
    first = BestCheckpoint(dirpath=old, monitor="val/qa_acc", mode="max", save_top_k=1)
    first.best_k_models = {str(old / "epoch_001.ckpt"): torch.tensor(0.9)}
    first.best_model_path, first.kth_best_model_path = str(old / "epoch_001.ckpt"), str(old / "epoch_001.ckpt")
    first.best_model_score = first.kth_value = torch.tensor(0.9)

    resumed = BestCheckpoint(dirpath=new, monitor="val/qa_acc", mode="max", save_top_k=1)
    resumed.load_state_dict(first.state_dict())
    assert resumed.best_model_score == pytest.approx(0.9)
    assert Path(resumed.best_model_path) == new / "epoch_001.ckpt"  # copied: the new run folder stands alone
    assert (new / "epoch_001.ckpt").read_bytes() == b"the best weights" and (old / "epoch_001.ckpt").exists()
    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda decision, **kw: decision))
    assert not resumed.check_monitor_top_k(trainer, torch.tensor(0.5))  # a worse epoch does not become best
    assert resumed.check_monitor_top_k(trainer, torch.tensor(0.95))
