"""The long-range benchmark: accuracy by depth and family, the experiments' grid, the report's heatmaps, and
same-seed reproducibility."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from hierarchicalvlm.ablation.reach import depth_profile, mean_profile, wilson_interval
from hierarchicalvlm.ablation.report import write_report
from hierarchicalvlm.models.breakdown import AccuracyBreakdown, depth_buckets
from hierarchicalvlm.run.resolvers import curriculum_epochs

from ..conftest import compose_config
from .conftest import FIXED, stable_folders, train_py


def one_hot_logits(predictions: list[int], classes: int = 5) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predictions), classes).float()


def test_depth_buckets_split_the_unit_interval_evenly_and_keep_one_in_the_last() -> None:
    depth = torch.tensor([0.0, 0.099, 0.1, 0.55, 0.9, 0.999, 1.0])
    assert depth_buckets(depth, 10).tolist() == [0, 0, 1, 5, 9, 9, 9]
    assert depth_buckets(depth, 1).tolist() == [0] * 7


def test_breakdown_counts_by_family_and_depth_and_counts_non_finite_scores_as_misses() -> None:
    metric = AccuracyBreakdown(["match", "needle"], num_buckets=4)
    answers = torch.tensor([0, 1, 2, 3, 4, -100])
    predictions = one_hot_logits([0, 1, 0, 3, 4, 0])  # sample 2 is wrong; the last one has no answer
    predictions[4] = float("nan")  # a NaN row is a miss, never a lucky argmax
    family = torch.tensor([0, 0, 1, 1, -1, 1])  # sample 4: no known family
    depth = torch.tensor([0.0, 0.3, 0.3, 0.8, 0.8, 0.1])
    metric.update(predictions, answers, family, depth)
    out = {k: float(v) for k, v in metric.compute().items()}
    assert out["num_samples"] == 5
    assert out["match"] == 1.0 and out["needle"] == 0.5
    assert out["depth_0"] == 1.0 and out["depth_1"] == 0.5 and out["depth_3"] == 0.5
    assert "depth_2" not in out  # no sample there: no figure rather than 0
    assert out["match/depth_0"] == 1.0 and out["needle/depth_1"] == 0.0 and out["needle/depth_3"] == 1.0


def test_breakdown_without_depths_reports_families_only() -> None:
    metric = AccuracyBreakdown(["count"], num_buckets=10)
    metric.update(one_hot_logits([1, 2]), torch.tensor([1, 1]), torch.tensor([0, 0]), None)
    assert {k: float(v) for k, v in metric.compute().items()} == {"num_samples": 2.0, "count": 0.5}


def test_curriculum_epochs_cover_every_doubling_then_the_final_epochs() -> None:
    assert curriculum_epochs(256, 32, 1, 3) == 3 + 3  # 32, 64, 128 then 3 epochs at 256
    assert curriculum_epochs(100, 16, 2, 1) == 3 * 2 + 1  # 16, 32, 64 (2 each) then 100
    assert curriculum_epochs(16, 32, 1, 2) == 2  # already at full length


def test_wilson_interval_contains_the_estimate_and_narrows_with_samples() -> None:
    low, high = wilson_interval(0.9, 100)
    assert low < 0.9 < high and 0.8 < low and high < 0.96
    wide, narrow = wilson_interval(0.5, 20), wilson_interval(0.5, 2000)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


@pytest.mark.parametrize("experiment", ["long_range", "long_range_gpu"])
def test_the_long_range_experiments_sweep_every_mechanism_with_three_seeds(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    params = cfg.hydra.sweeper.params
    assert [int(s) for s in str(params.seed).split(",")] == [0, 1, 2]
    assert "full" in params.attention.split(",") and "local" in params.attention.split(",")
    assert cfg.model.net.memory_enabled is False and list(cfg.data.tasks) == ["needle"]
    assert cfg.sweep_resume is True and cfg.hydra.sweep.dir.endswith(experiment)
    frames = [int(n) for n in str(params["data.num_frames"]).split(",")]
    tokens = [n * (cfg.data.frame_size // cfg.model.net.patch_size) ** 2 for n in frames]
    if experiment.endswith("gpu"):
        assert params.attention.split(",") == ["full", "local", "local_global", "performer", "mamba", "strided"]
        assert tokens == [1024, 4096, 16384]
    else:
        assert min(tokens) >= 512 and cfg.trainer.accelerator == "cpu"
    # every job ends with the same number of epochs at its own length
    assert cfg.trainer.max_epochs == curriculum_epochs(cfg.data.num_frames, 32, 1, cfg.final_epochs)


def fake_job(sweep: Path, attention: str, frames: int, seed: int, depth_accuracy: list[float]) -> None:
    folder = sweep / f"attention={attention},data.num_frames={frames},seed={seed}"
    folder.mkdir(parents=True)
    metrics = {"test/qa_acc": sum(depth_accuracy) / len(depth_accuracy), "test/chance_acc": 1 / 6,
               "test/num_samples": 512.0}
    metrics.update({f"test/qa_acc/depth_{k}": a for k, a in enumerate(depth_accuracy)})
    summary = {"status": "completed", "attention": attention, "num_frames": frames, "seq_len": 4 * frames,
               "seed": seed, "memory": False, "tasks": ["needle"], "device": "cpu", "metrics": metrics,
               "throughput": {"tokens_per_sec_median": 1000.0 + seed}}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_the_report_draws_the_depth_heatmap_and_the_chance_level(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        fake_job(sweep, "full", 64, seed, [1.0] * 10)
        # a window sees only the last tenth of the video
        fake_job(sweep, "local", 64, seed, [0.2] * 9 + [0.9 + 0.05 * seed])
        fake_job(sweep, "mamba", 64, seed, [0.17] * 10)  # learned nothing: flagged, not read as a result
    files = write_report(sweep)
    text = files.report.read_text()
    rows = {line.split("|")[1].strip(" *"): line for line in text.splitlines() if line.startswith("| **")}
    assert "at chance" in rows["mamba"] and "at chance" not in rows["local"] and "at chance" not in rows["full"]
    assert "## Accuracy by evidence depth" in text and "Chance accuracy (best guess from the question alone): 0.167" in text
    local = text[text.index("### local"):]
    assert "| 90-100 % | 0.93 ± 0.04 |" in local and "| 0-10 % | 0.20 ± 0.00 |" in local
    assert any(p.name == "depth_heatmaps.png" for p in files.plots) and (sweep / "plots" / "depth_heatmaps.svg").is_file()
    profile = mean_profile([json.loads(p.read_text()) for p in sweep.glob("attention=local*/summary.json")])
    assert profile[9][0] == pytest.approx(0.925) and profile[0][2] == 2


def test_depth_profile_prefers_test_and_ignores_non_finite_values() -> None:
    summary = {"metrics": {"val/qa_acc/depth_0": 0.5, "test/qa_acc/depth_0": 0.7, "test/qa_acc/depth_1": float("nan")}}
    assert depth_profile(summary) == {0: 0.7}
    assert depth_profile({"metrics": {"val/qa_acc/depth_3": 0.4}}) == {3: 0.4}


@pytest.mark.slow
def test_a_tiny_long_range_sweep_logs_depths_and_reproduces_its_validation_curve(tmp_path: Path) -> None:
    """Two runs with the same seed log the same validation curve; each job's summary holds per-depth accuracy."""
    fixed = [*FIXED, "experiment=long_range", f"paths.log_dir={tmp_path}", "final_epochs=2",
             "data.curriculum.start_frames=8", "model.optimizer.lr=3e-3", "model.scheduler.warmup_steps=2"]
    curves = []
    for name in ("a", "b"):
        result = train_py(["-m", *fixed, *stable_folders(fixed), "attention=full", "data.num_frames=16", "seed=0",
                           f"sweep_name={name}"])
        assert result.returncode == 0, result.stderr[-2000:]
        (summary_file,) = tmp_path.glob(f"*/multiruns/{name}/*/summary.json")
        job = summary_file.parent
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["tasks"] == ["needle"]
        assert any(k.startswith("test/qa_acc/depth_") for k in summary["metrics"])
        with open(next(job.rglob("metrics.csv"))) as f:
            curves.append([row["val/qa_acc"] for row in csv.DictReader(f) if row.get("val/qa_acc")])
    assert len(curves[0]) >= 2 and curves[0] == curves[1]
