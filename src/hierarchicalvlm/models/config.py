"""One config object for the network's shape: what ``model.net`` in ``conf/model/hierarchical.yaml`` holds.

The fields have no defaults on purpose: the YAML is the one place a default lives, so code and config cannot
disagree (``tests/models/test_net_config.py`` checks that the YAML names exactly these fields). Built once by the
LightningModule from Hydra's ``model.net`` dict and passed down to :class:`~hierarchicalvlm.models.HierarchicalVLM`,
:class:`~hierarchicalvlm.models.video_encoder.HierarchicalVideoEncoder` and
:class:`~hierarchicalvlm.models.text_encoder.TextEncoder` (as nanoGPT's ``GPTConfig``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


VIDEO_SUMMARIES = ("token", "mean")
ADDED_LATER: dict[str, Any] = {"video_summary": "token", "time_scale": 0.1, "question_tokens": False}


@dataclass(frozen=True)
class NetConfig:
    """Shape of the hierarchical video-language network (``model.net``; the YAML comments say what each does)."""

    dim: int                        # token width of every level
    num_heads: int                  # attention heads of every level
    patch_size: int                 # pixels per patch side (pixel inputs learned from scratch)
    level1_depth: int               # blocks within each frame (full attention over its patches)
    level2_depth: int               # blocks over the whole video: the configured attention
    text_depth: int                 # blocks of the from-scratch text encoder
    memory_enabled: bool            # cross-attention of every token to a bank of clip summaries
    clip_frames: int                # frames per clip summary of the memory bank
    mlp_ratio: float                # MLP hidden width / dim
    dropout: float
    embed_dim: int                  # joint video-text embedding size of the contrastive objective
    max_text_length: int            # positions of the from-scratch text encoder
    activation_checkpointing: bool  # recompute level-2 blocks in the backward pass to save memory
    video_summary: str              # contrastive summary: "token" ([VID] reads level 2) or "mean" (of its tokens)
    time_scale: float               # initial weight of the frame-time (sin/cos) signal added to every token; learned
    question_tokens: bool           # the question's word tokens join level 2 (after the video), not only its vector

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "model.net") -> "NetConfig":
        """Build from ``model.net`` (a dict or DictConfig, e.g. a checkpoint's hparams); an unknown or missing key is
        an error naming ``<where>.<field>``."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"{', '.join(f'{where}.{key}' for key in unknown)}: not a network setting; the settings are "
                f"{', '.join(known)} (conf/model/hierarchical.yaml); fix the name or drop the override"
            )
        # Checkpoints written before a field existed were trained as its first value behaved.
        values = {**ADDED_LATER, **values}
        missing = [name for name in known if name not in values]
        if missing:
            raise ValueError(
                f"{', '.join(f'{where}.{key}' for key in missing)} missing: every network setting needs a value "
                f"(conf/model/hierarchical.yaml `net:` gives them all)"
            )
        config = cls(**{name: values[name] for name in known})
        if config.video_summary not in VIDEO_SUMMARIES:
            raise ValueError(f"{where}.video_summary must be one of {', '.join(VIDEO_SUMMARIES)}, "
                             f"got {config.video_summary!r}")
        scale = config.time_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale >= 0):
            raise ValueError(f"{where}.time_scale must be a finite number >= 0 (the initial weight of the frame-time "
                             f"signal; 0.1 is the default), got {config.time_scale!r}")
        if not isinstance(config.question_tokens, bool):
            raise ValueError(f"{where}.question_tokens must be true or false, got {config.question_tokens!r}")
        return config
