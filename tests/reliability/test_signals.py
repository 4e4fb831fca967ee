"""SIGTERM and SIGINT stop a run after the current step with last.ckpt saved there, the summary says
``interrupted``, the exit status is 143 / 130, and in a sweep the job resumes on the next run of the command
(formerly: exit 0 and a stale last.ckpt, a summary left ``running``, a sweep that went on to the next job)."""

from __future__ import annotations

import os
import subprocess
import sys
import signal
import time
from pathlib import Path

import pytest
import torch

from hierarchicalvlm.run.result import RunResult
from hierarchicalvlm.run.job import Job
from hierarchicalvlm.run.summary import read_summary
from hierarchicalvlm.callbacks.interrupt import STATE, RunInterrupted, _handler, shield_data_workers, signals_handled
from hierarchicalvlm.run.cli import run_job
from hierarchicalvlm.run.checkpoint_io import read_checkpoint

from .conftest import HERE, job_config


def send(step: int, signum: int) -> list[str]:
    return [f"+callbacks.signal._target_={HERE}.SendSignal", f"+callbacks.signal.step={step}",
            f"+callbacks.signal.signum={int(signum)}"]


# (signal, step it is sent at, steps done when the run stops, exit status). Epochs have 2 steps. SIGTERM as the
# epoch's last step (1) starts: the run finishes that step, the epoch's validation and its checkpoints, then
# stops; SIGINT as the first step starts (mid-epoch): the run stops after that step.
SINGLE_RUN = {"SIGTERM": (signal.SIGTERM, 1, 2, 143), "SIGINT": (signal.SIGINT, 0, 1, 130)}


@pytest.mark.parametrize("name", sorted(SINGLE_RUN))
def test_a_signal_saves_the_current_step_and_exits_128_plus_its_number(name: str, tmp_path: Path, capsys) -> None:
    signum, step, done, code = SINGLE_RUN[name]
    before = signal.getsignal(signum)
    with pytest.raises(SystemExit) as exit_:
        run_job(job_config(tmp_path, *send(step, signum)))
    assert exit_.value.code == code and signal.getsignal(signum) is before
    assert f"interrupted by {name} at step {done}" in capsys.readouterr().err
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == done
    if done == 2:  # the end-of-epoch checkpoint was written before stopping
        assert (tmp_path / "checkpoints" / "epoch_000.ckpt").is_file()
    summary = read_summary(tmp_path)
    assert summary["status"] == "interrupted" and name in summary["error"]["message"]


def test_sigterm_stops_a_sweep_and_its_next_run_resumes_the_job(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:  # raised, not recorded as failed: the sweep stops here
        run_job(job_config(tmp_path, *send(0, signal.SIGTERM), multirun=True))
    assert exit_.value.code == 143
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["global_step"] == 1
    assert read_summary(tmp_path)["status"] == "interrupted"

    resumed = []
    Job(job_config(tmp_path, multirun=True), lambda cfg: resumed.append(cfg.ckpt_path) or RunResult()).execute()
    summary = read_summary(tmp_path)
    assert resumed == [str(last)] and summary["attempt"] == 2 and summary["status"] == "completed"


def test_outside_training_a_signal_stops_at_once() -> None:
    with signals_handled(), pytest.raises(RunInterrupted) as err:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert err.value.exit_code == 143 and "outside training" in str(err.value)


def test_a_second_signal_during_training_stops_at_once() -> None:
    with signals_handled():
        STATE.training = True
        _handler(signal.SIGINT, None)  # the first one only asks to stop after the step
        assert STATE.received == signal.SIGINT
        with pytest.raises(RunInterrupted) as err:
            _handler(signal.SIGINT, None)
    assert err.value.exit_code == 130 and STATE.received is None and not STATE.training


class SignalsItsWorker(torch.utils.data.Dataset):
    """Each item sends SIGTERM to the process loading it, as ``timeout`` or SLURM signal a whole process group."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return index


def test_data_workers_survive_a_signal_to_the_process_group() -> None:
    class DataModule:
        def train_dataloader(self):
            return torch.utils.data.DataLoader(SignalsItsWorker(), batch_size=2, num_workers=1,
                                               multiprocessing_context="fork")

    datamodule = DataModule()
    shield_data_workers(datamodule)
    # before, the worker died and the main process raised "DataLoader worker ... exited unexpectedly"
    assert [b.tolist() for b in datamodule.train_dataloader()] == [[0, 1], [2, 3]]


EXIT_WITH_LIVE_WORKERS = """
import torch
from hierarchicalvlm.callbacks.interrupt import shield_data_workers

class DataModule:
    def train_dataloader(self):
        return torch.utils.data.DataLoader(list(range(64)), batch_size=2, num_workers=2, persistent_workers=True,
                                           multiprocessing_context="fork")

datamodule = DataModule()
shield_data_workers(datamodule)
KEPT = iter(datamodule.train_dataloader())  # a loader left running, as a failed job's traceback keeps it
next(KEPT)
print("exiting", flush=True)
"""


def test_a_process_exits_with_its_shielded_data_workers_still_running(tmp_path: Path) -> None:
    """Workers ignore SIGTERM; Python's exit hook terminates child processes with SIGTERM and joins them, so
    before the exit hook of shutdown_data_workers the process waited for them forever (a failed soak job
    outlived its failure by 20 minutes)."""
    script = tmp_path / "exit_with_workers.py"
    script.write_text(EXIT_WITH_LIVE_WORKERS)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert done.returncode == 0 and "exiting" in done.stdout, done.stderr
