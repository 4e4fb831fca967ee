"""Pre-norm transformer block around any sequence mixer: ``x + mix(norm(x))``, then ``x + ffn(norm(x))``."""

from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from hierarchicalvlm.utils.checks import check_positive

from .base import SequenceMixer


class FeedForward(nn.Sequential):
    """Two-layer GELU MLP with dropout."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        check_positive(mlp_ratio=mlp_ratio)
        hidden = int(dim * mlp_ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))


class AttentionBlock(nn.Module):
    """Pre-norm residual block: the unit the model stacks at every level.

    Args:
        mixer: the attention mechanism (any :class:`SequenceMixer`).
        mlp_ratio: hidden size of the feed-forward network over ``dim``.
        dropout: dropout on the residual branches.
    """

    def __init__(self, mixer: SequenceMixer, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        dim = mixer.dim
        self.norm1 = nn.LayerNorm(dim)
        self.mixer = mixer
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + self.drop(self.mixer(self.norm1(x), mask))
        return x + self.ffn(self.norm2(x))


def mixer_from_menu(menu: Mapping[str, type[SequenceMixer]], attention_type: str, **kwargs) -> SequenceMixer:
    """``menu[attention_type](**kwargs)``: the fixed choice of the named blocks (HierarchicalAttentionBlock,
    LinearAttentionBlock). The mechanisms of the model are chosen through ``conf/attention/`` instead."""
    if attention_type not in menu:
        raise ValueError(f"attention_type must be one of {tuple(menu)}, got {attention_type!r}")
    return menu[attention_type](**kwargs)
