"""End to end: `python train.py data=video_text ...` and `data=features ...` on the tiny fixture data (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hierarchicalvlm.run.config_checks import ConfigError
from hierarchicalvlm.run.job import Job, JobOutcome
from hierarchicalvlm.run.pipeline import run

from ..conftest import ROOT, job_config_from, run_train_py

pytestmark = pytest.mark.slow

TINY_MODEL = [
    "model.net.dim=32", "model.net.num_heads=2", "model.net.embed_dim=16", "model.net.patch_size=8",
    "callbacks.progress_bar=null", "callbacks.model_summary=null",
]
RUN = [*TINY_MODEL, "trainer.max_steps=2", "debug=fdr", "logger=csv"]


def train(tmp_path: Path, *overrides: str):
    out = tmp_path / "run"
    return run_train_py(
        [*overrides, *RUN, f"paths.output_dir={out}", f"hydra.run.dir={out}", f"paths.log_dir={tmp_path / 'logs'}"],
        cwd=ROOT, timeout=300,
    )


def train_in_process(tmp_path: Path, *overrides: str) -> JobOutcome:
    """The same job as :func:`train`, run in this process (no interpreter start-up); a failure is raised."""
    cfg = job_config_from([*overrides, *RUN], tmp_path / "run")
    return Job(cfg, run).execute()


def test_train_on_videos(media, write_file, tmp_path):
    ann = write_file("ann.csv", "video,caption,question,answer,split\n"
                                "videos/a.mp4,a fade,what fades?,square,train\n"
                                "videos/b.mp4,a slow fade,what fades?,circle,train\n"
                                "videos/c.webm,a webm fade,what fades?,square,val\n")
    result = train(tmp_path, "data=video_text", f"data.annotations={ann}", f"data.video_root={media}",
                   "data.num_frames=8", "data.frame_size=16", "data.batch_size=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train/loss" in result.stdout


def test_train_on_features(media, write_file, tmp_path):
    ann = write_file("ann.jsonl", '{"video": "videos/a.mp4", "caption": "one", "question": "q?", "answer": "x", "split": "train"}\n'
                                  '{"video": "videos/b.mp4", "caption": "two", "question": "q?", "answer": "y", "split": "train"}\n'
                                  '{"video": "videos/c.webm", "caption": "three", "question": "q?", "answer": "x", "split": "val"}\n')
    outcome = train_in_process(tmp_path, "data=features", f"data.annotations={ann}",
                               f"data.feature_root={media / 'features'}", "data.max_frames=16", "data.batch_size=2")
    assert outcome.status == "completed" and "train/loss" in outcome.metrics


def test_train_skips_a_corrupt_video(media, write_file, tmp_path):
    ann = write_file("ann.csv", "video,caption,question,answer,split\nvideos/a.mp4,good,what?,yes,train\n"
                                "videos/corrupt.mp4,bad,what?,no,train\nvideos/b.mp4,fine,what?,yes,val\n"
                                "videos/corrupt.mp4,bad,what?,no,val\n")
    result = train(tmp_path, "data=video_text", f"data.annotations={ann}", f"data.video_root={media}",
                   "data.num_frames=8", "data.frame_size=16", "data.batch_size=2", "data.on_bad_sample=skip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data/skipped_samples" in result.stdout and "data/skipped_samples/val" in result.stdout  # per split
    output = result.stdout + result.stderr  # the bad file is named with its annotation line and the reason
    assert f"skipping bad sample 'videos/corrupt' of the train split ({ann}:3)" in output
    assert f"of the val split ({ann}:5)" in output and "corrupt or unsupported format" in output


def test_missing_and_malformed_annotations_are_reported(media, write_file, tmp_path):
    with pytest.raises(ConfigError, match="data.annotations is required"):  # train.py: exit status 2, one line
        train_in_process(tmp_path, "data=video_text", f"data.video_root={media}")
    bad = write_file("bad.csv", "video,caption,start,end\nvideos/a.mp4,ok,0,1\nvideos/b.mp4,bad,2,1\n")
    with pytest.raises(Exception, match=r"line 3: end \(1 s\) must be greater than start \(2 s\)"):
        train_in_process(tmp_path, "data=video_text", f"data.annotations={bad}", f"data.video_root={media}",
                         "data.frame_size=16")
