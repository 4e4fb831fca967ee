"""The whole network: hierarchical video encoder + text encoder + the two objectives' heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from hierarchicalvlm.data.base import IGNORE_INDEX

from .config import NetConfig
from .text_backbone import build_text_encoder
from .text_encoder import TextEncoder
from .video_encoder import AttentionFactory, HierarchicalVideoEncoder


@dataclass
class VLMOutput:
    qa_logits: torch.Tensor  # (B, num_answers)
    video_embedding: torch.Tensor  # (B, E) unit-norm
    text_embedding: torch.Tensor  # (B, E) unit-norm
    logit_scale: torch.Tensor  # (1,), exp of the learned temperature


class HierarchicalVLM(nn.Module):
    """Video-language model whose long-range level uses a pluggable attention mechanism.

    Args:
        inputs: what the data module reports (``DataModule.model_inputs()``): input kind and shape,
            ``vocab_size`` and ``num_answers``.
        attention: factory ``attention(dim=..., num_heads=...)`` for the level-2 mixers (from ``conf/attention``).
        config: the network's shape (``model.net``; :meth:`NetConfig.from_dict` builds it from the YAML's dict).
        visual, text: the encoder choices ``model.visual`` / ``model.text`` (``conf/model/{visual,text}``); None:
            patches and words learned from scratch.
    """

    def __init__(
        self,
        inputs: dict[str, Any],
        attention: AttentionFactory,
        config: NetConfig,
        visual: Optional[dict[str, Any]] = None,
        text: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.video = HierarchicalVideoEncoder(inputs, attention, config, visual=visual)
        self.text = build_text_encoder(text, inputs["vocab_size"], dim) or TextEncoder(inputs["vocab_size"], config)
        self.video_proj = nn.Linear(dim, config.embed_dim)
        self.text_proj = nn.Linear(dim, config.embed_dim)
        # log(1/0.07), CLIP's initial temperature; shape (1,) because FSDP cannot shard 0-d parameters
        self.logit_scale = nn.Parameter(torch.tensor([2.659]))
        self.qa_head = nn.Sequential(
            nn.LayerNorm(2 * dim), nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, inputs["num_answers"])
        )

    @property
    def tokens_per_frame(self) -> int:
        return self.video.tokens_per_frame

    def forward(self, batch: dict[str, Any]) -> VLMOutput:
        words = None
        if self.config.question_tokens:
            question, words = self.text(batch["question_ids"], batch["question_mask"], tokens=True)
        else:
            question = self.text(batch["question_ids"], batch["question_mask"])
        encoded = self.video(batch["frames"], batch["frame_mask"], question, padded=batch.get("padded"),
                             words=words, word_mask=batch["question_mask"])
        caption = self.text(batch["caption_ids"], batch["caption_mask"])
        return VLMOutput(
            qa_logits=self.qa_head(torch.cat([encoded.qa, question], dim=-1)),
            video_embedding=F.normalize(self.video_proj(encoded.video), dim=-1),
            text_embedding=F.normalize(self.text_proj(caption), dim=-1),
            logit_scale=self.logit_scale.clamp(max=4.6052).exp(),  # temperature >= 0.01
        )


def contrastive_loss(video: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the batch: the i-th video matches the i-th caption."""
    logits = scale * video @ text.t()
    target = torch.arange(len(video), device=video.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def qa_loss(logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the answer vocabulary; samples without an answer are ignored (0 if none has one)."""
    if (answer != IGNORE_INDEX).any():
        return F.cross_entropy(logits.float(), answer, ignore_index=IGNORE_INDEX)
    return logits.sum() * 0.0
