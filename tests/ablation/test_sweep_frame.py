"""load_sweep's DataFrame and the report built from it: per-batch spread, guide slopes, overhead-bound cells,
failed / diverged / unfinished cells marked in the plots, last validation of interrupted jobs, SVGs, labels."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import pandas as pd
import pytest

from hierarchicalvlm.ablation import load_sweep
from hierarchicalvlm.ablation.figures import colours_of, guide_lines, mark_problems, place_labels
from hierarchicalvlm.ablation.report import AblationTable, write_report
from hierarchicalvlm.run.summary import write_json_atomic
from hierarchicalvlm.ablation.sweep import sweep_command


def fake_job(sweep: Path, attention: str, frames: int, seed: int, status: str = "completed", accuracy: float = 0.8,
             tokens_per_sec: float = 1000.0, windows: Optional[list[float]] = None, val: Optional[list[float]] = None,
             error: Optional[tuple[str, str]] = None, parameters: Optional[int] = None) -> Path:
    """A job folder: summary.json (with a resolved config) and, if ``windows`` or ``val``, csv/metrics.csv with
    one throughput row per window (steps 10, 20, ...) and one validation row per epoch."""
    job = sweep / f"attention={attention},data.num_frames={frames},seed={seed}"
    done = status == "completed"
    summary = {
        "status": status, "attention": attention, "num_frames": frames, "seq_len": frames * 4, "seed": seed,
        "memory": False, "tasks": ["needle"], "override_dirname": job.name, "attempt": 1, "duration_s": 12.5,
        "device": "cpu (x86_64, 2 threads)",
        "metrics": {"test/qa_acc": accuracy, "test/chance_acc": 0.25, "test/num_samples": 64.0,
                    "val/qa_acc": accuracy} if done else {},
        "throughput": {"tokens_per_sec_median": tokens_per_sec, "step_time_s_median": frames * 4 / tokens_per_sec,
                       "steady_steps": 10 * len(windows or [0])} if done else {},
        "peak_memory": {"bytes": 2**30, "kind": "host_rss"},
        "error": {"type": error[0], "message": error[1], "traceback_tail": []} if error else None,
        "config": {"data": {"num_frames": frames}, "seed": seed, "attention": {"_target_": attention},
                   "callbacks": {"throughput": {"log_every_n_steps": 10}}},
    }
    if parameters is not None:
        summary["num_parameters"] = parameters
    write_json_atomic(job / "summary.json", summary)
    if windows or val:
        (job / "csv").mkdir(parents=True, exist_ok=True)
        with open(job / "csv" / "metrics.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "step", "throughput/tokens_per_sec", "throughput/step_time_s", "val/qa_acc"])
            for i, speed in enumerate(windows or []):
                writer.writerow([0, 10 * (i + 1), speed, frames * 4 / speed, ""])
            for epoch, value in enumerate(val or []):
                writer.writerow([epoch, 100 * (epoch + 1), "", "", value])
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "multiruns" / "toy"
    for seed in (0, 1):
        # full attention: tokens/s rises 7x from 128 to 512 tokens: fixed overhead dominates the short cell
        fake_job(sweep, "full", 32, seed, tokens_per_sec=100.0, windows=[90.0, 100.0, 110.0, 120.0])
        fake_job(sweep, "full", 128, seed, tokens_per_sec=700.0, windows=[600.0, 700.0, 800.0])
        fake_job(sweep, "performer", 32, seed, accuracy=0.6, tokens_per_sec=300.0, windows=[300.0])
    fake_job(sweep, "performer", 128, 0, status="diverged",
             error=("NonFiniteError", "non-finite loss at step 3 (epoch 0)"))
    fake_job(sweep, "performer", 128, 1, status="failed", error=("OutOfMemoryError", "CUDA out of memory"))
    fake_job(sweep, "mamba", 32, 0, status="interrupted", val=[0.5, 0.75, 1.0],
             error=("RunInterrupted", "interrupted by SIGINT at step 2363; saved last.ckpt"))
    fake_job(sweep, "mamba", 128, 0, status="running")  # killed outright: no CSV, no summary update
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n    - experiment=long_seq_ablation\n    - attention=full\n")
    return sweep


def test_load_sweep_has_one_typed_row_per_job(sweep: Path) -> None:
    frame = load_sweep(sweep)
    assert len(frame) == 10 and frame.attrs["swept_keys"] == ["data.num_frames"]
    assert frame["status"].value_counts().to_dict() == {"completed": 6, "diverged": 1, "failed": 1,
                                                        "interrupted": 1, "running": 1}
    assert str(frame["status"].dtype) == "string" and str(frame["seq_len"].dtype) == "Int64"
    for column in ("accuracy", "test/qa_acc", "tokens_per_sec_median", "tokens_per_sec_q25", "last_val_accuracy"):
        assert frame[column].dtype == "float64", column
    assert frame["data.num_frames"].tolist() == frame["num_frames"].tolist()  # typed from the resolved config
    full = frame[(frame.attention == "full") & (frame.seq_len == 512)].iloc[0]
    assert (full.tokens_per_sec_q25, full.tokens_per_sec_q75) == (650.0, 750.0) and full.per_batch_windows == 3
    assert full.device.startswith("cpu") and full.duration_s == 12.5 and full.attempt == 1
    failed = frame[frame.status == "failed"].iloc[0]
    assert failed.error_type == "OutOfMemoryError" and pd.isna(failed.accuracy)


def test_an_interrupted_job_shows_its_last_validation_apart_from_the_final_accuracy(sweep: Path) -> None:
    frame = load_sweep(sweep)
    job = frame[frame.status == "interrupted"].iloc[0]
    assert pd.isna(job.accuracy) and job.last_val_accuracy == 1.0 and job.last_val_epoch == 2
    assert job.last_step == 2363  # the summary's word, not the last step the CSV logger flushed
    files = write_report(sweep)
    mamba = next(line for line in files.report.read_text().splitlines() if line.startswith("| **mamba**"))
    assert "interrupted at step 2363 · last val acc 1.000 (epoch 2, not final)" in mamba
    assert "acc 1.000" not in mamba.replace("last val acc 1.000", "")  # never a final figure
    jobs = pd.read_csv(files.jobs_csv)
    assert {"last_val_accuracy", "last_val_epoch", "last_step"} <= set(jobs.columns)
    assert jobs.loc[jobs.status == "interrupted", "accuracy"].isna().all()


def test_failed_and_diverged_cells_are_reported_and_marked_in_the_plots(sweep: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = write_report(sweep)
    text = files.report.read_text()
    assert "1 failed, 1 diverged, 2 unfinished" in text
    performer = next(line for line in text.splitlines() if line.startswith("| **performer**"))
    assert "✗ diverged: NonFiniteError" in performer and "✗ failed: OutOfMemoryError" in performer
    table = AblationTable.from_frame(load_sweep(sweep))
    fig, ax = plt.subplots()
    assert mark_problems(ax, table, colours_of(table)) == 3  # performer @ 512, mamba @ 128 and @ 512
    labels = {t.get_text() for t in ax.texts}
    assert {"performer: 1 diverged, 1 failed", "mamba: 1 interrupted", "mamba: 1 running"} <= labels
    plt.close(fig)
    names = {p.name for p in files.plots}
    assert {"throughput_vs_length.png", "step_time_vs_length.png", "accuracy_vs_throughput.png"} <= names
    assert all(p.with_suffix(".svg").is_file() and p.with_suffix(".svg").stat().st_size > 1000 for p in files.plots)


def test_overhead_bound_cells_are_flagged_and_guides_have_the_right_slopes(sweep: Path) -> None:
    table = AblationTable.from_frame(load_sweep(sweep))
    assert table.overhead_bound("full", 128) == pytest.approx((7.0, 512))
    assert table.overhead_bound("full", 512) is None and table.overhead_bound("performer", 128) is None
    files = write_report(sweep)
    assert files.warnings == ["overhead-bound: full @ 128 tokens: 7.0× the tokens/s at 512 tokens"]
    text = files.report.read_text()
    full = next(line for line in text.splitlines() if line.startswith("| **full**"))
    assert "⚠ overhead-bound: tok/s 7.0× higher at 512 tokens" in full.split(" | ")[1]
    assert "100.0 tok/s (IQR 97.5–112.5)" in full
    assert "## Overhead-bound cells" in text and "- full @ 128 tokens: 7.0×" in text

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    guide_lines(ax, [128, 256, 512], 100.0, {"O(n)": 1.0, "O(n²)": 2.0})
    (linear, quadratic) = ax.get_lines()
    assert list(linear.get_ydata()) == [100.0, 400.0] and list(quadratic.get_ydata()) == [100.0, 1600.0]
    plt.close(fig)


def test_caption_has_the_command_and_a_parameter_count_only_when_recorded(sweep: Path, tmp_path: Path) -> None:
    frame = load_sweep(sweep)
    command = sweep_command(frame, sweep)
    assert command == ("python train.py -m experiment=long_seq_ablation attention=full,mamba,performer "
                       "data.num_frames=32,128 seed=0,1")
    text = write_report(sweep).report.read_text()
    assert f"`{command}`" in text and "parameters" not in text
    other = tmp_path / "multiruns" / "sized"
    fake_job(other, "full", 32, 0, parameters=1_234_567)
    assert "Model: 1.23M parameters." in write_report(other).report.read_text()


def test_labels_are_placed_clear_of_each_other_and_of_the_points() -> None:
    anchors = [(100.0, 100.0), (100.0, 100.0), (102.0, 101.0), (300.0, 100.0)]
    sizes = [(30.0, 10.0)] * 4
    offsets = place_labels(anchors, sizes)
    boxes = [(x + dx, y + dy, x + dx + w, y + dy + h) for (x, y), (dx, dy), (w, h) in zip(anchors, offsets, sizes)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)
        for x, y in anchors:
            assert not (a[0] < x < a[2] and a[1] < y < a[3])
