"""Pre-norm transformer block around any sequence mixer: ``x + mix(norm(x))``, then ``x + ffn(norm(x))``."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .base import SequenceMixer, build_attention, check_positive


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


class NamedAttentionBlock(AttentionBlock):
    """An :class:`AttentionBlock` whose mixer is chosen by registry name among ``allowed``."""

    allowed: tuple[str, ...] = ()

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attention_type: str,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        **attention_kwargs,
    ) -> None:
        if attention_type not in self.allowed:
            raise ValueError(f"attention_type must be one of {self.allowed}, got {attention_type!r}")
        mixer = build_attention(attention_type, dim=dim, num_heads=num_heads, dropout=dropout, **attention_kwargs)
        super().__init__(mixer, mlp_ratio=mlp_ratio, dropout=dropout)
