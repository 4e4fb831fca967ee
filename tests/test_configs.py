"""Every choice of every config group composes, and the attention group is the one place the mechanism is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hierarchicalvlm.attention import SequenceMixer

from .conftest import CONF, compose_config

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in {"hydra", "paths"})
CHOICES = [(group, f.stem) for group in GROUPS for f in sorted((CONF / group).glob("*.yaml"))]
ATTENTIONS = sorted(f.stem for f in (CONF / "attention").glob("*.yaml"))


@pytest.mark.parametrize(("group", "choice"), CHOICES, ids=[f"{g}={c}" for g, c in CHOICES])
def test_every_choice_composes(group: str, choice: str, tmp_path: Path) -> None:
    cfg = compose_config([f"{group}={choice}"], tmp_path)
    assert cfg.hydra.runtime.choices[group] == choice


@pytest.mark.parametrize("name", ATTENTIONS)
def test_attention_choice_builds_a_sequence_mixer(name: str, tmp_path: Path) -> None:
    cfg = compose_config([f"attention={name}"], tmp_path)
    mixer = instantiate(cfg.attention)(dim=32, num_heads=4)
    assert isinstance(mixer, SequenceMixer)


def test_required_groups_are_present() -> None:
    for group in ("attention", "model", "data", "trainer", "logger", "callbacks", "paths", "hydra", "experiment", "debug"):
        assert (CONF / group).is_dir(), f"conf/{group} is missing"
    assert {"full", "strided", "local_global", "performer", "mamba"} <= set(ATTENTIONS)


def test_unknown_choice_names_the_group_and_the_options(tmp_path: Path) -> None:
    with pytest.raises(MissingConfigException) as err:
        compose_config(["attention=nope"], tmp_path)
    message = str(err.value)
    assert "attention/nope" in message and "full" in message


@pytest.mark.parametrize("experiment", [None, "long_seq_ablation", "reach"])
def test_the_sweep_folder_resolves_before_any_job_exists(experiment, monkeypatch, tmp_path: Path) -> None:
    """Hydra computes hydra.sweep.dir before a job's HydraConfig is set: no ${hydra:...} may be needed for it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.delenv("PROJECT_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
    overrides = [f"experiment={experiment}"] if experiment else []
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert str(cfg.hydra.sweep.dir).startswith(str(tmp_path / "logs"))


# The resumable sweep layout (conf/hydra/sweep/resumable.yaml), as the experiments spelled it out before it was shared.
RESUMABLE_EXCLUDE = ["experiment", "sweep_name", "sweep_resume", "logger", "data.num_workers", "trainer.devices",
                     "paths.root_dir", "paths.log_dir", "paths.data_dir", "paths.output_dir", "ckpt_path"]
SWEEPS = {  # experiment: (task_name, sweep_name)
    "long_seq_ablation": ("ablation", "long_seq_ablation"),
    "long_seq_ablation_gpu": ("ablation", "long_seq_ablation_gpu"),
    "reach": ("reach", "reach"),
    "long_range_gpu": ("long_range", "long_range_gpu"),
    "long_range": ("long_range", "long_range"),
    "order_cpu": ("order", "order_cpu"),
    "order_gpu": ("order", "order_gpu"),
}


@pytest.mark.parametrize("experiment", sorted(SWEEPS))
def test_sweep_experiments_use_the_resumable_layout(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert cfg.hydra.runtime.choices["hydra/sweep"] == "resumable"
    assert hydra["sweep"] == {"dir": "${paths.log_dir}/${task_name}/multiruns/${sweep_name}",
                              "subdir": "${hydra.job.override_dirname}"}
    assert hydra["job"]["config"]["override_dirname"]["exclude_keys"] == RESUMABLE_EXCLUDE
    assert (cfg.task_name, cfg.sweep_name, cfg.sweep_resume) == (*SWEEPS[experiment], True)
    assert cfg.callbacks.model_checkpoint.monitor == "val/qa_acc" and cfg.callbacks.model_checkpoint.mode == "max"


def test_plain_multiruns_keep_the_timestamped_layout(tmp_path: Path) -> None:
    cfg = compose_config([], tmp_path)
    hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert hydra["sweep"] == {"dir": "${paths.log_dir}/${task_name}/multiruns/${now:%Y-%m-%d}_${now:%H-%M-%S}",
                              "subdir": "${hydra.job.num}"}
    assert hydra["job"]["config"]["override_dirname"]["exclude_keys"] == []
    assert (cfg.sweep_name, cfg.sweep_resume, cfg.optimized_metric, cfg.optimized_mode) == (None, True, "val/qa_acc", "max")
