"""What a run is, in the few facts a sweep varies: computed here once for its summary, its tags and its name.

The summary (``summary.json``), the wandb tags and group, the loggers' run name (``${hvlm.run_name:}``) and the
model recorded in a checkpoint (:mod:`.model_identity`) all name the attention the same way, through
:func:`attention_name`.
"""

from __future__ import annotations

from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from hierarchicalvlm.run.config_checks import ConfigError, tokens_per_frame


def attention_name(cfg: DictConfig) -> str:
    """The ``attention=`` choice of the run (its class name when the config was not composed by Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("attention")
        if choice:
            return str(choice)
    return str(cfg.attention.get("_target_", "?")).rsplit(".", 1)[-1]


def level2_length(cfg: DictConfig) -> Optional[int]:
    """Tokens of the level-2 (long-range) sequence: frames x tokens per frame; None where not known statically
    or where the config cannot give it (e.g. a patch size that does not divide the frame)."""
    try:
        per_frame = tokens_per_frame(cfg)
    except ConfigError:
        return None
    frames = OmegaConf.select(cfg, "data.num_frames", default=None)
    return per_frame * frames if per_frame and frames else None


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """Attention, frames, level-2 length, seed, memory level and task families of a run (None where unknown)."""
    return {
        "attention": attention_name(cfg),
        "num_frames": OmegaConf.select(cfg, "data.num_frames", default=None),
        "seq_len": level2_length(cfg),
        "seed": cfg.get("seed"),
        "memory": OmegaConf.select(cfg, "model.net.memory_enabled", default=None),
        "tasks": list(OmegaConf.select(cfg, "data.tasks", default=None) or []) or None,
    }


def run_name(identity: dict[str, Any]) -> str:
    """``<attention>-<frames>f-s<seed>`` (the parts that are known), the loggers' name of the run."""
    parts = [str(identity["attention"])]
    if identity.get("num_frames") is not None:
        parts.append(f"{identity['num_frames']}f")
    if identity.get("seed") is not None:
        parts.append(f"s{identity['seed']}")
    return "-".join(parts)
