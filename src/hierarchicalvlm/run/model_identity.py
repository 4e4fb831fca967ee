"""Which model a checkpoint holds (attention choice, network config), recorded in it and checked when it is loaded.

Most attention mechanisms have interchangeable parameters (q/k/v and output projections), so a ``full``
checkpoint loads into ``strided`` or ``local`` without a single error and silently becomes another experiment.
Every checkpoint therefore records :func:`model_identity` under :data:`IDENTITY_KEY`, and
:func:`check_model_identity` refuses a ``ckpt_path`` whose model differs from the configured one, naming both.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from hierarchicalvlm.run.checkpoint_io import CheckpointError
from hierarchicalvlm.run.identity import attention_name

log = logging.getLogger(__name__)

IDENTITY_KEY = "hvlm_model"
# Settings that change speed or memory, or only regularise training, never what the weights mean: they may
# differ between the checkpoint and the run that loads it.
RUNTIME_ATTENTION_KEYS = frozenset({"_partial_", "kernel", "chunk_size", "dropout"})
RUNTIME_NET_KEYS = frozenset({"activation_checkpointing", "dropout"})


def model_identity(cfg: DictConfig) -> dict[str, Any]:
    """What a checkpoint of this config holds: the attention choice and settings and the network config."""
    return {
        "attention": {"name": attention_name(cfg), "config": OmegaConf.to_container(cfg.attention, resolve=True)},
        "net": OmegaConf.to_container(cfg.model.net, resolve=True),
    }


def _differences(prefix: str, saved: dict[str, Any], current: dict[str, Any], ignore: frozenset[str]) -> list[str]:
    keys = sorted((set(saved) | set(current)) - ignore)
    missing = "(unset)"
    return [f"{prefix}.{k}: checkpoint {saved.get(k, missing)!r}, this run {current.get(k, missing)!r}"
            for k in keys if saved.get(k, missing) != current.get(k, missing)]


def check_model_identity(checkpoint: dict[str, Any], cfg: DictConfig | dict[str, Any], path: str) -> None:
    """Refuse ``checkpoint`` (read from ``path``) when its attention or network differs from the run's (``cfg``,
    or its :func:`model_identity`).

    A checkpoint written before the identity was recorded is checked on its network config alone (from its
    hyper-parameters), with a warning that its attention cannot be verified.
    """
    current = model_identity(cfg) if isinstance(cfg, DictConfig) else cfg
    saved: Optional[dict[str, Any]] = checkpoint.get(IDENTITY_KEY)
    problems: list[str] = []
    if saved is None:
        log.warning("ckpt_path %s does not record its attention choice (written before this check existed): "
                    "make sure it was trained with attention=%s", path, current["attention"]["name"])
        saved_net = (checkpoint.get("hyper_parameters") or {}).get("net")
    else:
        saved_net = saved.get("net")
        before, now = saved["attention"], current["attention"]
        if before["config"].get("_target_") != now["config"].get("_target_"):
            problems.append(f"attention: checkpoint {before['name']!r} ({before['config'].get('_target_')}), "
                            f"this run {now['name']!r} ({now['config'].get('_target_')})")
        else:
            problems += _differences("attention", before["config"], now["config"], RUNTIME_ATTENTION_KEYS)
    if isinstance(saved_net, dict):
        problems += _differences("model.net", saved_net, current["net"], RUNTIME_NET_KEYS)
    if problems:
        fix = f"attention={saved['attention']['name']} " if saved is not None else ""
        raise CheckpointError(
            f"ckpt_path {path} holds a different model than this run configures: {'; '.join(problems)}. "
            f"Resume or evaluate it with the settings it was trained with ({fix}and the checkpoint's values above), "
            "or start a new run without ckpt_path")


class RecordModelIdentity(Callback):
    """Writes the run's :func:`model_identity` into every checkpoint (added by the pipeline to every run)."""

    def __init__(self, identity: dict[str, Any]) -> None:
        self.identity = identity

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[IDENTITY_KEY] = self.identity
