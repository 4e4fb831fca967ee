"""The sweep report from hand-made summaries: aggregation over seeds, speed-ups, failed/unfinished/missing cells."""

from __future__ import annotations

import csv
import json
import os
import statistics
from pathlib import Path

import pytest

from hierarchicalvlm.ablation import load_sweep
from hierarchicalvlm.ablation.figures import pareto_front
from hierarchicalvlm.ablation.report import AblationTable, latest_sweep, write_report
from hierarchicalvlm.run.summary import write_json_atomic


def make_job(sweep: Path, attention: str, frames: int, seed: int, status: str = "completed",
             accuracy: float = 0.5, tokens_per_sec: float = 1000.0, peak_gib: float = 1.0, error: str = "") -> None:
    job = sweep / f"attention={attention},data.num_frames={frames},seed={seed}"
    summary = {
        "status": status, "attention": attention, "num_frames": frames, "seq_len": frames * 4, "seed": seed,
        "device": "NVIDIA H100 80GB HBM3", "metrics": {"test/qa_acc": accuracy} if status == "completed" else {},
        "throughput": {"tokens_per_sec_median": tokens_per_sec} if status == "completed" else {},
        "peak_memory": {"bytes": int(peak_gib * 1024**3), "kind": "device"},
        "error": {"type": "OutOfMemoryError", "message": error, "traceback_tail": []} if status == "failed" else None,
    }
    write_json_atomic(job / "summary.json", summary)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "logs" / "ablation" / "multiruns" / "toy"
    for seed, accuracy in ((0, 0.5), (1, 0.7)):
        make_job(sweep, "full", 64, seed, accuracy=accuracy, tokens_per_sec=1000.0, peak_gib=2.0 + seed)
        make_job(sweep, "performer", 64, seed, accuracy=accuracy - 0.1, tokens_per_sec=3000.0, peak_gib=1.0)
        make_job(sweep, "performer", 256, seed, accuracy=0.4, tokens_per_sec=2500.0 + 500 * seed, peak_gib=1.5)
    make_job(sweep, "full", 256, 0, status="failed", error="CUDA out of memory. Tried to allocate 8.00 GiB | big")
    make_job(sweep, "full", 256, 1, status="running")
    make_job(sweep, "mamba", 64, 0, accuracy=0.6, tokens_per_sec=2000.0)  # no mamba job at 256 at all
    return sweep


def test_cells_aggregate_seeds_and_compare_with_full_at_the_same_length(sweep: Path) -> None:
    table = AblationTable.from_frame(load_sweep(sweep))
    assert table.attentions == ["full", "mamba", "performer"] and table.lengths == [256, 1024]
    full = table.cell("full", 256)
    assert full.accuracy == pytest.approx((0.6, statistics.stdev([0.5, 0.7])))
    assert full.peak_memory == pytest.approx((3.0, "device"))
    assert table.speedup("performer", 256) == pytest.approx(3.0)
    assert table.speedup("performer", 1024) is None  # full has no throughput there
    assert table.cell("performer", 1024).tokens_per_sec == pytest.approx(2750.0)
    assert table.cell("mamba", 256).accuracy == (0.6, None)  # one seed: no std


def test_report_marks_failed_unfinished_and_missing_cells(sweep: Path) -> None:
    files = write_report(sweep)
    text = files.report.read_text()
    rows = {line.split(" | ")[0].strip("| *"): line.split(" | ")[1:] for line in text.splitlines()
            if line.startswith("| **")}
    assert "256 tokens (64 frames)" in text and "1,024 tokens (256 frames)" in text
    full_short, full_long = rows["full"]
    assert "acc 0.600 ± 0.141 (n=2)" in full_short and "1.00k tok/s" in full_short and "1.00× vs full" in full_short
    assert "3.00 GiB device" in full_short
    assert "✗ failed: OutOfMemoryError: CUDA out of memory" in full_long and "\\|" in full_long  # pipe escaped
    assert "unfinished (1 job(s)" in full_long
    assert rows["mamba"][1].startswith("not run")
    assert "3.00× vs full" in rows["performer"][0]
    assert "## Failures" in text and "Tried to allocate 8.00 GiB" in text
    assert "9 jobs: 7 completed, 1 failed, 1 unfinished" in text
    jobs = list(csv.DictReader(open(files.jobs_csv)))
    assert len(jobs) == 9 and sum(r["status"] == "failed" for r in jobs) == 1
    failed = next(r for r in jobs if r["status"] == "failed")
    assert failed["error_type"] == "OutOfMemoryError" and failed["accuracy"] == ""
    assert "Command (reconstructed from the job folders): `python train.py -m" in text
    assert len(files.plots) == 5 and all(p.stat().st_size > 1000 for p in files.plots)
    assert all(p.with_suffix(".svg").stat().st_size > 1000 for p in files.plots)


def test_a_given_command_replaces_the_reconstructed_one(sweep: Path, tmp_path: Path) -> None:
    given = "bash scripts/gpu_jobs.sh '-m attention=full' '-m attention=performer'"
    text = write_report(sweep, out_dir=tmp_path, command=given).report.read_text()
    assert f"Command: `{given}`" in text and "reconstructed" not in text


def test_the_longest_video_table_comes_from_max_seq_len_json(sweep: Path) -> None:
    document = {"device": "cpu", "limit": "peak host RSS <= 1.00 GiB", "results": {
        "full": {"max_frames": 96, "max_seq_len": 384, "first_failure_frames": 128, "bounded": True,
                 "reason": "peak 1.10 GiB host_rss > cap 1.00 GiB"},
        "performer": {"max_frames": 1024, "max_seq_len": 4096, "first_failure_frames": None, "bounded": False,
                      "reason": None},
    }}
    (sweep / "max_seq_len.json").write_text(json.dumps(document))
    text = write_report(sweep).report.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| attention"))
    assert header.endswith("longest trainable video |")
    assert "96 frames = 384 tokens" in text and "4,096 tokens (search limit; may go further)" in text
    assert "## Longest video that trains one step" in text and "128 frames" in text


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(1.0, 0.9), (2.0, 0.8), (1.5, 0.7), (3.0, 0.5), (0.5, 0.85)]
    assert pareto_front(points) == [(1.0, 0.9), (2.0, 0.8), (3.0, 0.5)]


def test_latest_picks_the_newest_sweep_and_the_cli_explains_a_missing_one(tmp_path: Path, capsys) -> None:
    from scripts.ablation_report import main

    old, new = tmp_path / "a" / "multiruns" / "old", tmp_path / "b" / "multiruns" / "new"
    make_job(old, "full", 8, 0)
    make_job(new, "full", 8, 0)
    for summary in old.rglob("summary.json"):
        os.utime(summary, (1, 1))
    assert latest_sweep(tmp_path) == new
    assert main(["--latest", "--log-dir", str(tmp_path)]) == 0 and (new / "report.md").is_file()
    assert main([str(old)]) == 0 and latest_sweep(tmp_path) == new  # a report does not make a sweep newer
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
