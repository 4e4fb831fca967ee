"""Weights & Biases bookkeeping of sweep jobs: one run per job, one group per sweep, searchable tags.

wandb is touched only when the job's config has a ``logger.wandb`` entry (``logger=wandb`` or
``logger=many``) or a wandb run is open; nothing here imports wandb otherwise.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def identity_tags(identity: dict[str, Any]) -> list[str]:
    """``attention:full``, ``frames:64``, ``seq_len:256``, ``seed:0`` (the facts a sweep varies)."""
    names = {"attention": "attention", "num_frames": "frames", "seq_len": "seq_len", "seed": "seed"}
    return [f"{tag}:{identity[key]}" for key, tag in names.items() if identity.get(key) is not None]


def annotate_wandb(cfg: DictConfig, identity: dict[str, Any], group: Optional[str]) -> None:
    """Add the job's identity to the wandb logger's tags and, in a sweep, set its group to the sweep name."""
    if OmegaConf.select(cfg, "logger.wandb._target_", default=None) is None:
        return
    wandb_cfg = cfg.logger.wandb
    existing = OmegaConf.to_container(wandb_cfg.tags, resolve=True) if wandb_cfg.get("tags") is not None else []
    tags = list(dict.fromkeys([*map(str, existing), *identity_tags(identity)]))
    with open_dict(cfg):
        wandb_cfg.tags = tags
        if group:
            wandb_cfg.group = group


def _flat_numbers(prefix: str, values: dict[str, Any]) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def finish_wandb(identity: dict[str, Any], metrics: dict[str, float], throughput: dict[str, Any], status: str) -> None:
    """Put the job's identity in the open wandb run's config, its results in the run summary, and finish it,
    so the next job of the sweep starts a run of its own."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return
    try:
        run.config.update({"job": identity}, allow_val_change=True)
        run.summary.update({
            **metrics,
            **_flat_numbers("throughput_summary/", throughput),
            "job_status": status,
        })
    finally:
        wandb.finish(exit_code=0 if status == "completed" else 1)
