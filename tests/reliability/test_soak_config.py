"""The GPU soak the issue asks for is one command: performer and mamba, bf16, 10,000 steps at 16K tokens."""

from __future__ import annotations

from pathlib import Path

from hierarchicalvlm.run.config_checks import tokens_per_frame, validate_config

from ..conftest import compose_config


def test_the_soak_experiment_composes_as_documented(tmp_path: Path) -> None:
    cfg = compose_config(["experiment=soak_gpu"], tmp_path)
    assert set(cfg.hydra.sweeper.params.attention.split(",")) == {"performer", "mamba"}
    assert cfg.data.num_frames * tokens_per_frame(cfg) == 16384
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.max_steps == 10000
    assert cfg.data.num_train // cfg.data.batch_size >= cfg.trainer.max_steps  # one epoch covers every step
    validate_config(cfg)
    assert "experiment=soak_gpu" in (Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md").read_text()
