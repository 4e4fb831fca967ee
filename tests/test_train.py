"""End-to-end runs of the training pipeline on tiny shapes (CPU)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from hierarchicalvlm.run.pipeline import run
from hierarchicalvlm.run.config_checks import ConfigError

from .conftest import CONF, run_train_py

ATTENTIONS = sorted(f.stem for f in (CONF / "attention").glob("*.yaml"))


@pytest.mark.parametrize("name", ATTENTIONS)
def test_fast_dev_run_trains_every_attention(name: str, make_cfg) -> None:
    # the tiny test videos have 32 level-2 tokens: shrink windows so the sparse pattern still fits
    fits = ["attention.window_size=8"] if "window_size" in (CONF / "attention" / f"{name}.yaml").read_text() else []
    metrics = run(make_cfg(f"attention={name}", "debug=fdr", "logger=none", *fits)).metrics
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_resume_continues_at_the_saved_step(make_cfg, tmp_path: Path) -> None:
    run(make_cfg("debug=limit", "trainer.max_epochs=2", "test=false"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["global_step"] == 6 and saved["optimizer_states"] and saved["lr_schedulers"]

    run(make_cfg("debug=limit", "trainer.max_epochs=3", "test=false", f"ckpt_path={last}"))
    resumed = torch.load(last, map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 9 and resumed["epoch"] == 2
    # the resumed run logged its validation at a global step past the saved one (a fresh run would be at <= 2)
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "csv" / "metrics.csv")) if r.get("val/loss")]
    assert steps and min(steps) >= 6


def test_evaluate_a_checkpoint(make_cfg, tmp_path: Path) -> None:
    run(make_cfg("debug=limit", "trainer.max_epochs=1", "test=false"))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    metrics = run(make_cfg("debug=limit", "train=false", "test=true", f"ckpt_path={ckpt}", "logger=none")).metrics
    assert 0.0 <= metrics["test/qa_acc"] <= 1.0 and "test/t2v_r1" in metrics


def test_a_kill_during_save_keeps_the_last_checkpoint(make_cfg, tmp_path: Path, monkeypatch) -> None:
    run(make_cfg("debug=limit", "trainer.max_epochs=1", "test=false", "logger=none"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    def interrupted_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt("killed while saving")

    from hierarchicalvlm.run import checkpoint_io

    monkeypatch.setattr(checkpoint_io.torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_io.AtomicCheckpointIO().save_checkpoint({"x": 1}, last)
    assert last.read_bytes() == before
    assert not list(last.parent.glob("*.tmp"))


BAD_INPUTS = {
    "model.net.num_heads": (["model.net.dim=30", "model.net.num_heads=4"], "divisible"),
    "data.num_frames": (["data.num_frames=0"], "data.num_frames"),
    "data.batch_size": (["data.batch_size=-2"], "data.batch_size"),
    "attention.stride": (["attention=strided", "attention.stride=4096"], "attention.stride"),
    "attention.window_size": (["attention=local_global", "attention.window_size=100000"], "attention.window_size"),
    "attention.num_features": (["attention=performer", "attention.num_features=0"], "num_features"),
    "ckpt_path": (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path"),
    "trainer=fsdp on cpu": (["trainer=fsdp", "trainer.accelerator=cpu"], "trainer.accelerator=cpu"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_error_before_any_compute(case: str, make_cfg, monkeypatch) -> None:
    overrides, expected = BAD_INPUTS[case]
    import hierarchicalvlm.run.pipeline as pipeline

    monkeypatch.setattr(pipeline, "build", lambda cfg: pytest.fail("built objects despite a config error"))
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        run(make_cfg(*overrides))


def test_cli_reports_a_config_error_without_traceback(tmp_path: Path) -> None:
    result = run_train_py(["model.net.dim=30", "model.net.num_heads=4", f"hydra.run.dir={tmp_path}"], timeout=120)
    assert result.returncode == 2
    assert "model.net.dim (30) must be divisible by model.net.num_heads (4)" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unpadded_batch_gives_the_same_encoding_as_an_explicit_all_true_mask(make_cfg) -> None:
    """Unpadded batches skip the masks (fused kernels); a batch with one padded video takes the masked path."""
    import torch
    from hydra.utils import instantiate

    from hierarchicalvlm.models.config import NetConfig
    from hierarchicalvlm.models.video_encoder import HierarchicalVideoEncoder

    cfg = make_cfg()
    inputs = {"kind": "pixels", "frame_shape": (3, 16, 16)}
    torch.manual_seed(0)
    net = NetConfig.from_dict({**cfg.model.net, "dim": 32, "num_heads": 2, "patch_size": 8})
    encoder = HierarchicalVideoEncoder(inputs, instantiate(cfg.attention), net).eval()
    frames, question = torch.rand(2, 8, 3, 16, 16), torch.randn(2, 32)
    unpadded = encoder(frames, torch.ones(2, 8, dtype=torch.bool), question)
    # Append a padded frame to the batch: the masked path must give the same result on the real frames.
    padded_frames = torch.cat([frames, torch.zeros(2, 1, 3, 16, 16)], dim=1)
    padded_mask = torch.ones(2, 9, dtype=torch.bool)
    padded_mask[:, -1] = False
    padded = encoder(padded_frames, padded_mask, question)
    torch.testing.assert_close(padded.qa, unpadded.qa, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(padded.tokens[:, :-4], unpadded.tokens, atol=1e-5, rtol=1e-4)


def test_validation_reports_qa_accuracy_per_task_family(make_cfg) -> None:
    """Per-family accuracies are logged for the families present, and their mean weighted by count is the
    overall accuracy."""
    from hierarchicalvlm.data.synthetic import SyntheticVideoQADataset

    cfg = make_cfg("data.tasks=[count,order,match]", "trainer.max_epochs=1", "test=false")
    metrics = run(cfg).metrics
    families = [s.family for s in (SyntheticVideoQADataset(make_spec(cfg), cfg.data.seed, "val", cfg.data.num_val).scene(i)
                                   for i in range(cfg.data.num_val))]
    per_family = {f: metrics[f"val/qa_acc/{f}"] for f in set(families)}
    family_keys = {k for k in metrics if k.startswith("val/qa_acc/") and "depth_" not in k}
    assert set(f"val/qa_acc/{f}" for f in ("count", "order", "match")) >= family_keys
    weighted = sum(per_family[f] * families.count(f) for f in per_family) / len(families)
    assert abs(weighted - metrics["val/qa_acc"]) < 1e-5
    # the depth buckets split the same answers: their count-weighted mean is the overall accuracy too
    depths = [s.depth(cfg.data.num_frames) for s in (SyntheticVideoQADataset(make_spec(cfg), cfg.data.seed, "val",
                                                                            cfg.data.num_val).scene(i)
                                                     for i in range(cfg.data.num_val))]
    buckets = [min(int(d * 10), 9) for d in depths]
    by_depth = sum(metrics[f"val/qa_acc/depth_{b}"] * buckets.count(b) for b in set(buckets)) / len(buckets)
    assert abs(by_depth - metrics["val/qa_acc"]) < 1e-5 and metrics["val/num_samples"] == len(families)


def make_spec(cfg):
    from hierarchicalvlm.data.synthetic import SyntheticVideoSpec

    d = cfg.data
    return SyntheticVideoSpec(d.num_frames, d.frame_size, tuple(d.tasks), d.noise, d.distractor_rate, d.caption_events)
