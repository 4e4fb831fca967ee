"""Sweeps through the real ``python train.py -m``: summaries, a crash and a resume, failure isolation, wandb, report."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from hierarchicalvlm.ablation.report import write_report

from .conftest import FIXED, SEARCHPATH, kill_group, stable_folders, start_train_py, train_py, wandb_records

ATTENTIONS, FRAMES = ("full", "strided"), (8, 16)
TOKENS_PER_FRAME = 4  # TINY: 16 px frames, patch 8
EPOCHS, BATCHES_PER_EPOCH = 2, 3  # debug=limit: 3 training batches per epoch
INTERRUPTED = "attention=strided,data.num_frames=16"  # the last job of the grid
ARTIFACTS = ("summary.json", "checkpoints/last.ckpt", "csv/metrics.csv")


def job_dirs(sweep: Path) -> dict[str, Path]:
    return {p.name: p for p in sweep.iterdir() if (p / ".hydra").is_dir()}


def summary_of(job: Path) -> dict:
    return json.loads((job / "summary.json").read_text())


def global_step(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])


@pytest.fixture(scope="module")
def resumed_sweep(tmp_path_factory) -> SimpleNamespace:
    """A 2x2 sweep killed (SIGKILL) while its last job trains, then started again with the same command."""
    root = tmp_path_factory.mktemp("resumed_sweep")
    sweep = root / "multirun"
    fixed = [*FIXED, f"trainer.max_epochs={EPOCHS}"]
    args = ["-m", f"attention={','.join(ATTENTIONS)}", f"data.num_frames={','.join(map(str, FRAMES))}",
            *fixed, f"hydra.sweep.dir={sweep}", *stable_folders(fixed)]

    process = start_train_py(args, root / "first_run.log")
    first_checkpoint = sweep / INTERRUPTED / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not first_checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail(f"the sweep ended before it could be interrupted:\n{(root / 'first_run.log').read_text()[-3000:]}")
    kill_group(process)

    interrupted = sweep / INTERRUPTED
    before = {
        "status": summary_of(interrupted)["status"],
        "step": global_step(first_checkpoint),
        "mtimes": {(job, name): (path / name).stat().st_mtime_ns
                   for job, path in job_dirs(sweep).items() if job != INTERRUPTED for name in ARTIFACTS},
    }
    second = train_py(args, timeout=300)
    return SimpleNamespace(dir=sweep, before=before, second=second)


def test_every_job_of_the_sweep_writes_a_completed_summary(resumed_sweep) -> None:
    assert resumed_sweep.second.returncode == 0, resumed_sweep.second.stderr[-3000:]
    jobs = job_dirs(resumed_sweep.dir)
    assert set(jobs) == {f"attention={a},data.num_frames={f}" for a in ATTENTIONS for f in FRAMES}
    for name, job in jobs.items():
        summary = summary_of(job)
        assert summary["status"] == "completed" and summary["error"] is None
        assert f"attention={summary['attention']},data.num_frames={summary['num_frames']}" == name
        assert summary["seq_len"] == summary["num_frames"] * TOKENS_PER_FRAME and summary["seed"] == 0
        assert summary["config"]["data"]["num_frames"] == summary["num_frames"]  # the resolved config
        assert 0.0 <= summary["metrics"]["test/qa_acc"] <= 1.0
        assert summary["throughput"]["steady_steps"] >= 1 and summary["throughput"]["tokens_per_sec_median"] > 0
        assert summary["peak_memory"]["kind"] == "host_rss" and summary["peak_memory"]["bytes"] > 0
        assert summary["num_parameters"] > 0  # the report's model size
        assert summary["device"].startswith("cpu") and summary["started_at"] <= summary["ended_at"]


def test_a_rerun_skips_finished_jobs_and_resumes_the_interrupted_one(resumed_sweep) -> None:
    before = resumed_sweep.before
    assert before["status"] == "running"  # killed mid-job
    assert 0 < before["step"] < EPOCHS * BATCHES_PER_EPOCH
    for (job, name), mtime in before["mtimes"].items():
        assert (resumed_sweep.dir / job / name).stat().st_mtime_ns == mtime, f"{job}/{name} was rewritten"
        assert summary_of(resumed_sweep.dir / job)["attempt"] == 1

    resumed = resumed_sweep.dir / INTERRUPTED
    summary = summary_of(resumed)
    last = resumed / "checkpoints" / "last.ckpt"
    assert summary["attempt"] == 2 and summary["resumed_from"] == str(last)
    assert global_step(last) == EPOCHS * BATCHES_PER_EPOCH
    # only the batches after the checkpoint were trained again (not the whole job)
    throughput = summary["throughput"]
    assert throughput["steady_steps"] + throughput["excluded_warmup_steps"] == EPOCHS * BATCHES_PER_EPOCH - before["step"]
    assert "skipping" in resumed_sweep.second.stderr + resumed_sweep.second.stdout


def test_throughput_metrics_appear_in_every_jobs_csv(resumed_sweep) -> None:
    for job in job_dirs(resumed_sweep.dir).values():
        rows = list(csv.DictReader(open(job / "csv" / "metrics.csv")))
        logged = [r for r in rows if r.get("throughput/tokens_per_sec")]
        assert logged, f"no throughput rows in {job}"
        for row in logged:
            assert float(row["throughput/tokens_per_sec"]) > 0 and float(row["throughput/step_time_s"]) > 0
            assert float(row["memory/host_peak_rss_gib"]) > 0
        assert any(r.get("summary/tokens_per_sec_median") for r in rows)


def test_the_report_has_every_cell(resumed_sweep, tmp_path: Path) -> None:
    files = write_report(resumed_sweep.dir, out_dir=tmp_path)
    text = files.report.read_text()
    table = [line for line in text.splitlines() if line.startswith("| **")]
    assert len(table) == len(ATTENTIONS)
    for line in table:
        cells = line.split(" | ")[1:]
        assert len(cells) == len(FRAMES)
        assert all("acc " in c and "tok/s" in c and "GiB host RSS" in c and "× vs full" in c for c in cells)
    assert "not run" not in text and "failed" not in text.split("| attention")[1]
    assert " parameters." in text.split("| attention")[0]  # the model size, from the summaries
    rows = list(csv.DictReader(open(files.jobs_csv)))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"completed"}
    assert sorted(p.name for p in files.plots) == sorted(
        ["throughput_vs_length.png", "step_time_vs_length.png", "memory_vs_length.png", "accuracy_vs_length.png",
         "accuracy_vs_throughput.png", "depth_heatmaps.png"])
    assert all(p.stat().st_size > 1000 and p.with_suffix(".svg").stat().st_size > 1000 for p in files.plots)


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory) -> SimpleNamespace:
    """experiment=long_seq_ablation shrunk to two jobs run in parallel by the joblib launcher, one of which runs
    out of (simulated) memory; wandb offline; two data-loader workers per loader (formerly: under joblib every
    job failed with a pickle error as its workers started)."""
    logs = tmp_path_factory.mktemp("failing_sweep") / "logs"
    # paths.log_dir and logger are left out of the folder names by the experiment itself
    tiny = ["data.num_train=24", "data.num_val=8", "data.num_test=8", "callbacks.throughput.warmup_steps=1",
            "data.num_workers=2"]
    keys = ["experiment", "sweep_name", "sweep_resume", "logger", "paths.log_dir", *(o.split("=")[0] for o in tiny)]
    args = ["-m", "experiment=long_seq_ablation", "attention=full,exploding", "data.num_frames=32",
            f"paths.log_dir={logs}", "logger=many", *tiny, SEARCHPATH, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            f"hydra.job.config.override_dirname.exclude_keys=[{','.join(keys)}]"]
    result = train_py(args, timeout=300, WANDB_MODE="offline", WANDB_DIR=str(logs / "wandb"))
    return SimpleNamespace(result=result, logs=logs, dir=logs / "ablation" / "multiruns" / "long_seq_ablation")


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(failing_sweep) -> None:
    assert failing_sweep.result.returncode == 0, failing_sweep.result.stderr[-3000:]
    failed = summary_of(failing_sweep.dir / "attention=exploding,data.num_frames=32,seed=0")
    assert failed["status"] == "failed" and failed["metrics"] == {}
    assert failed["error"]["type"] == "OutOfMemoryError" and "simulated" in failed["error"]["message"]
    assert "exploding.py" in "\n".join(failed["error"]["traceback_tail"])
    assert failed["peak_memory"]["bytes"] > 0 and failed["ended_at"] is not None
    completed = summary_of(failing_sweep.dir / "attention=full,data.num_frames=32,seed=0")
    assert completed["status"] == "completed" and completed["job_num"] == 0 and failed["job_num"] == 1


def test_the_report_shows_the_failure_and_its_reason(failing_sweep) -> None:
    from scripts.ablation_report import main

    assert main(["--latest", "--log-dir", str(failing_sweep.logs)]) == 0
    text = (failing_sweep.dir / "report.md").read_text()
    exploding_row = next(line for line in text.splitlines() if line.startswith("| **exploding**"))
    assert "✗ failed: OutOfMemoryError: CUDA out of memory" in exploding_row
    assert "## Failures" in text and "simulated by tests/ablation/exploding.py" in text
    full_row = next(line for line in text.splitlines() if line.startswith("| **full**"))
    assert "acc " in full_row and "1.00× vs full" in full_row


def test_wandb_writes_one_offline_run_per_job_in_the_sweeps_group(failing_sweep) -> None:
    run_files = sorted(failing_sweep.dir.glob("*/wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 2 and len({f.parent.parent.parent for f in run_files}) == 2
    exits = {}
    for run_file in run_files:
        records = list(wandb_records(run_file))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        assert run.run_group == "long_seq_ablation"
        attention = run_file.parent.parent.parent.name.split(",")[0].split("=")[1]
        assert {f"attention:{attention}", "frames:32", "seq_len:128", "seed:0"} <= set(run.tags)
        summary_keys = {u.key or "/".join(u.nested_key) for r in records if r.WhichOneof("record_type") == "summary"
                        for u in r.summary.update}
        assert "job_status" in summary_keys and "throughput_summary/peak_memory_bytes" in summary_keys
        exits[attention] = next(r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit")
    assert exits == {"full": 0, "exploding": 1}
