"""Pre-norm transformer block around one of the linear-time mixers, chosen by name."""

from __future__ import annotations

from ..block import AttentionBlock, mixer_from_menu
from .mamba import MambaLayer
from .performer import PerformerAttention


class LinearAttentionBlock(AttentionBlock):
    """``x + mixer(norm(x))`` then ``x + ffn(norm(x))`` with a Performer or Mamba mixer.

    Args:
        dim, num_heads: model width and heads, passed to the mixer.
        attention_type: ``"performer"`` or ``"mamba"`` (the mixer's own defaults apply, e.g. a causal Mamba).
        mlp_ratio, dropout: feed-forward width and residual/mixer dropout.
        **kw: further mixer arguments (e.g. ``num_features``, ``d_state``, ``causal``).
    """

    mixers = {"performer": PerformerAttention, "mamba": MambaLayer}

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attention_type: str = "performer",
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        **kw,
    ) -> None:
        mixer = mixer_from_menu(self.mixers, attention_type, dim=dim, num_heads=num_heads, dropout=dropout, **kw)
        super().__init__(mixer, mlp_ratio=mlp_ratio, dropout=dropout)
