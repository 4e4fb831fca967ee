"""Validate a composed config before anything is built: one clear error naming the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue


class ConfigError(ValueError):
    """A mistake in the composed configuration, reported before any compute."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_positive(cfg: DictConfig, *fields: str) -> None:
    for field in fields:
        value = OmegaConf.select(cfg, field, default=None)
        if value is not None and (not _is_number(value) or value <= 0):
            raise ConfigError(f"{field} must be a positive number, got {value!r}; set e.g. {field}=1")


def _require_positive_int(cfg: DictConfig, *fields: str) -> None:
    for field in fields:
        value = OmegaConf.select(cfg, field, default=None)
        if value is not None and (not _is_int(value) or value <= 0):
            raise ConfigError(f"{field} must be a positive integer, got {value!r}; set e.g. {field}=1")


def _require_non_negative(cfg: DictConfig, *fields: str) -> None:
    for field in fields:
        value = OmegaConf.select(cfg, field, default=None)
        if value is not None and (not _is_int(value) or value < 0):
            raise ConfigError(f"{field} must be an integer >= 0, got {value!r}")


def _require_int_at_least(cfg: DictConfig, minimum: int, hint: str, *fields: str) -> None:
    """Integer fields (or null) with a lower bound, e.g. ``trainer.max_steps`` (-1: no limit)."""
    for field in fields:
        value = OmegaConf.select(cfg, field, default=None)
        if value is not None and (not _is_int(value) or value < minimum):
            raise ConfigError(f"{field} must be an integer >= {minimum}{hint}, got {value!r}; e.g. {field}={max(minimum, 1)}")


def _check_types(cfg: DictConfig) -> None:
    """Sizes, counts and the seed have the right type before any of them is computed with."""
    _require_positive_int(
        cfg, "model.net.dim", "model.net.num_heads", "model.net.patch_size", "model.net.level2_depth",
        "model.net.clip_frames", "model.net.embed_dim", "data.num_frames", "data.batch_size", "data.max_text_length",
        "data.max_frames", "data.frame_bucket", "trainer.accumulate_grad_batches",
    )
    _require_positive(cfg, "model.net.mlp_ratio", "model.optimizer.lr", "data.fps")
    _require_non_negative(cfg, "model.net.level1_depth", "model.net.text_depth", "data.num_workers",
                          "trainer.log_every_n_steps", "trainer.num_sanity_val_steps", "trainer.min_epochs")
    _require_int_at_least(cfg, -1, " (-1: no limit)", "trainer.max_steps", "trainer.max_epochs")
    _require_int_at_least(cfg, 1, "", "trainer.check_val_every_n_epoch")
    seed = cfg.get("seed")
    if seed is not None and not _is_int(seed):
        raise ConfigError(f"seed must be an integer (or null), got {seed!r}; e.g. seed=0")
    clip = OmegaConf.select(cfg, "trainer.gradient_clip_val", default=None)
    if clip is not None and (not _is_number(clip) or clip < 0):
        raise ConfigError(f"trainer.gradient_clip_val must be a number >= 0 (or null), got {clip!r}")


def _check_net(net: DictConfig) -> None:
    """``model.net`` read as the network will read it (:class:`NetConfig`): the same checks serve checkpoints."""
    from hierarchicalvlm.models.config import NetConfig

    try:
        NetConfig.from_dict(OmegaConf.to_container(net, resolve=True))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def frame_sides(frame_size) -> tuple[int, int]:
    """``data.frame_size`` as (H, W): an int for square frames or a pair [H, W]."""
    sides = [frame_size, frame_size] if isinstance(frame_size, int) else list(frame_size)
    if len(sides) != 2 or not all(isinstance(v, int) and v > 0 for v in sides):
        raise ConfigError(f"data.frame_size must be a positive int or a pair [H, W], got {frame_size!r}")
    return sides[0], sides[1]


def tokens_per_frame(cfg: DictConfig) -> int | None:
    """Level-2 tokens per frame implied by the config (None when the data kind is not known statically)."""
    if OmegaConf.select(cfg, "data.feature_root", default=None) is not None:
        return 1
    if OmegaConf.select(cfg, "model.visual.kind", default="patch") == "hf":  # a pretrained image encoder
        return max(1, int(OmegaConf.select(cfg, "model.visual.grid", default=0)) ** 2)
    frame_size = OmegaConf.select(cfg, "data.frame_size", default=None)
    if frame_size is None:
        return None
    patch = cfg.model.net.patch_size
    height, width = frame_sides(frame_size)
    if height % patch or width % patch:
        raise ConfigError(
            f"model.net.patch_size ({patch}) must divide data.frame_size ({height}x{width}); "
            f"choose a common divisor of {height} and {width}"
        )
    return (height // patch) * (width // patch)


def _check_resolvable(cfg: DictConfig) -> None:
    """Every mandatory value (``???``) of the job's config is set and every interpolation resolves.

    Hydra's own node (present when a config is composed with ``return_hydra_config``) is Hydra's business."""
    try:
        job_config = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
        OmegaConf.to_container(job_config, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or str(err)
        raise ConfigError(f"{key} is required but not set; pass it on the command line, e.g. {key}=/path/to/it") from None


def _check_paths(cfg: DictConfig) -> None:
    """Data paths named in the config exist (fields ending in _root, annotations, *_annotations)."""
    data = cfg.get("data") or {}
    for key, value in data.items():
        is_path_field = key.endswith("_root") or key.endswith("annotations") or key == "annotations"
        if is_path_field and value not in (None, "") and not Path(str(value)).exists():
            raise ConfigError(f"data.{key} points to {value!r}, which does not exist; fix the path (data.{key}=...)")


def _check_attention(cfg: DictConfig, seq_len: int | None) -> None:
    """Build one attention layer on the meta device: its own argument checks run without any compute."""
    attention_cfg = cfg.attention
    for field in ("stride", "window_size"):
        value = attention_cfg.get(field)
        if value is not None and seq_len is not None and isinstance(value, int) and value > 0 and value >= seq_len:
            raise ConfigError(
                f"attention.{field}={value} does not fit the level-2 sequence of {seq_len} tokens "
                f"(data.num_frames x tokens per frame); use attention.{field} < {seq_len} or more frames"
            )
    try:
        with torch.device("meta"):
            instantiate(attention_cfg)(dim=cfg.model.net.dim, num_heads=cfg.model.net.num_heads)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"attention: {err} (fix it with attention.<argument>=... on the command line)") from None


def _check_trainer(cfg: DictConfig) -> None:
    """Strategies that cannot run on the chosen device (Lightning would stop later, inside its Trainer)."""
    strategy = OmegaConf.select(cfg, "trainer.strategy", default=None)
    name = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy or "")
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    if "fsdp" in name.lower() and accelerator == "cpu":
        raise ConfigError(
            "trainer=fsdp shards over GPUs and cannot run with trainer.accelerator=cpu; "
            "on CPUs use trainer=ddp trainer.accelerator=cpu (gloo), or drop the accelerator override on a GPU machine"
        )


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first mistake found in ``cfg``.

    Types are checked first; should a check still meet a value it cannot handle, that also becomes a one-line
    :class:`ConfigError` rather than a traceback from inside the validator."""
    try:
        _validate(cfg)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, ZeroDivisionError) as err:
        raise ConfigError(
            f"the config could not be checked ({type(err).__name__}: {err}); a value of the wrong type is the "
            "usual cause: check the types of your command-line overrides"
        ) from None


def _validate(cfg: DictConfig) -> None:
    _check_resolvable(cfg)
    net = cfg.model.net
    _check_types(cfg)
    _check_net(net)
    if net.dim % net.num_heads:
        divisors = [h for h in range(1, net.dim + 1) if net.dim % h == 0 and h <= 32]
        raise ConfigError(
            f"model.net.dim ({net.dim}) must be divisible by model.net.num_heads ({net.num_heads}); "
            f"use num_heads in {divisors}"
        )
    per_frame = tokens_per_frame(cfg)
    frames = OmegaConf.select(cfg, "data.num_frames", default=None) or OmegaConf.select(cfg, "data.max_frames", default=None)
    seq_len = per_frame * frames if per_frame and frames else None
    _check_attention(cfg, seq_len)
    _check_paths(cfg)
    _check_trainer(cfg)
    if cfg.get("train") is False and cfg.get("test") and not cfg.get("ckpt_path"):
        raise ConfigError("train=false test=true evaluates a checkpoint: set ckpt_path=/path/to/file.ckpt")
    if cfg.get("ckpt_path") and not Path(str(cfg.ckpt_path)).exists():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path!r} does not exist; point it at a .ckpt file")

