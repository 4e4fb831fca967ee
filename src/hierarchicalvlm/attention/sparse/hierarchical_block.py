"""Transformer block whose mixer is one of the sparse mechanisms (or full attention), chosen by name."""

from __future__ import annotations

from .. import full  # noqa: F401  (registers "full")
from ..block import NamedAttentionBlock
from . import local_global, strided  # noqa: F401  (register "local_global" and "strided")


class HierarchicalAttentionBlock(NamedAttentionBlock):
    """Pre-norm block (``x + attn(norm(x))``, ``x + ffn(norm(x))``) around a sparse mixer.

    ``HierarchicalAttentionBlock(dim, num_heads, attention_type="local_global", mlp_ratio=4.0,
    dropout=0.0, **kw)``: ``attention_type`` is one of ``allowed``; ``**kw`` goes to that mixer
    (e.g. ``stride=8`` or ``window_size=128, num_global_tokens=8``).
    """

    allowed = ("strided", "local_global", "full")

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attention_type: str = "local_global",
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        **attention_kwargs,
    ) -> None:
        super().__init__(dim, num_heads, attention_type, mlp_ratio=mlp_ratio, dropout=dropout, **attention_kwargs)
