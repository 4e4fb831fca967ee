"""Pre-norm transformer block around one of the linear-time mixers, chosen by name."""

from __future__ import annotations

from ..block import NamedAttentionBlock
from . import mamba, performer  # noqa: F401  (registers "mamba" and "performer")


class LinearAttentionBlock(NamedAttentionBlock):
    """``x + mixer(norm(x))`` then ``x + ffn(norm(x))`` with a Performer or Mamba mixer.

    Args:
        dim, num_heads: model width and heads, passed to the mixer.
        attention_type: ``"performer"`` or ``"mamba"``.
        mlp_ratio, dropout: feed-forward width and residual/mixer dropout.
        **kw: further mixer arguments (e.g. ``num_features``, ``d_state``, ``causal``).
    """

    allowed = ("performer", "mamba")

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attention_type: str = "performer",
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        **kw,
    ) -> None:
        super().__init__(dim, num_heads, attention_type, mlp_ratio=mlp_ratio, dropout=dropout, **kw)
