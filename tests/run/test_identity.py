"""A run's identity is computed once: the summary, the loggers' run name and the model identity agree."""

from __future__ import annotations

from hierarchicalvlm.run.identity import run_identity, run_name
from hierarchicalvlm.run.model_identity import model_identity


def test_summary_name_and_checkpoint_name_the_same_run(make_cfg) -> None:
    cfg = make_cfg("attention=performer", "data.num_frames=16", "seed=3", "logger=wandb")
    identity = run_identity(cfg)
    assert identity["attention"] == model_identity(cfg)["attention"]["name"] == "performer"
    assert (identity["num_frames"], identity["seed"]) == (16, 3)
    assert identity["seq_len"] == 16 * 4  # 16x16 frames in 8x8 patches
    assert run_name(identity) == "performer-16f-s3" == cfg.logger.wandb.name  # through ${hvlm.run_name:}


def test_an_unknowable_length_leaves_the_rest_of_the_identity(make_cfg) -> None:
    cfg = make_cfg("model.net.patch_size=5")  # does not divide the 16-pixel frame
    identity = run_identity(cfg)
    assert identity["seq_len"] is None and identity["attention"] == "full" and identity["num_frames"] == 8
