"""Shared fixtures: compose the real Hydra config in-process, with every output under a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

# Without a GPU, Triton kernels run in Triton's CPU interpreter, so their tests still run (slowly, tiny shapes).
# Must be set before any kernel is defined, i.e. before hierarchicalvlm is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# mamba-ssm's deterministic mode runs one tile config per kernel instead of autotuning dozens: the GPU suite checks
# the kernels' results, not their speed, and compiling every config took most of its time (docs/PERFORMANCE.md).
os.environ.setdefault("MAMBA_DETERMINISTIC", "1")

import torch._dynamo.config as dynamo_config  # noqa: E402

from hierarchicalvlm.benchmark.cases import allow_recompiles  # noqa: E402

# The GPU tests compile FlexAttention for many lengths. Past dynamo's recompile limit (8) a compiled call silently
# runs eagerly (every score materialised): raise the limit, and fail rather than test that fallback.
allow_recompiles(64)
if hasattr(dynamo_config, "fail_on_recompile_limit_hit"):
    dynamo_config.fail_on_recompile_limit_hit = True

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import hierarchicalvlm.run.resolvers  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

try:  # PyAV is a core dependency; only the GPU image (which runs `pytest -m gpu`, no data tests) lacks it
    import av  # noqa: F401
except ImportError:
    collect_ignore = ["data"]
CONF = ROOT / "conf"

os.environ.setdefault("WANDB_MODE", "disabled")

# Tiny, fast settings for end-to-end runs on a 2-core CPU.
TINY = [
    "data.num_frames=8",
    "data.num_train=32",
    "data.num_val=16",
    "data.num_test=16",
    "data.batch_size=8",
    "model.net.dim=32",
    "model.net.num_heads=2",
    "model.net.embed_dim=16",
    "trainer.accelerator=cpu",
    "trainer.precision=32-true",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose conf/train.yaml like `python train.py <overrides>` would, outputs under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(ROOT)
        cfg.paths.log_dir = str(output_dir / "logs")
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.hydra.runtime.cwd = str(ROOT)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    def factory(*overrides: str, tiny: bool = True) -> DictConfig:
        return compose_config([*(TINY if tiny else []), *overrides], tmp_path)

    yield factory
    GlobalHydra.instance().clear()


def run_train_py(args: list[str], cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python train.py <args>`` in a subprocess (the real entry point, Hydra and all)."""
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def job_config_from(overrides: list[str], tmp_path: Path, multirun: bool = False) -> DictConfig:
    """A composed config as a job of ``train.py`` sees it (``multirun``: one job of a sweep whose folder is
    ``tmp_path.parent``), its Hydra node dropped."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    cfg = compose_config(overrides, tmp_path)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN if multirun else RunMode.RUN
        cfg.hydra.sweep.dir = str(tmp_path.parent)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
