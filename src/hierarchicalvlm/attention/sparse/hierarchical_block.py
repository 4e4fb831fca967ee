"""Transformer block whose mixer is one of the sparse mechanisms (or full attention), chosen by name."""

from __future__ import annotations

from ..block import AttentionBlock, mixer_from_menu
from ..full import FullAttention
from .local_global import LocalGlobalAttention
from .strided import StridedAttention


class HierarchicalAttentionBlock(AttentionBlock):
    """Pre-norm block (``x + attn(norm(x))``, ``x + ffn(norm(x))``) around a sparse mixer.

    ``HierarchicalAttentionBlock(dim, num_heads, attention_type="local_global", mlp_ratio=4.0,
    dropout=0.0, **kw)``: ``attention_type`` is one of ``mixers``; ``**kw`` goes to that mixer, whose own
    defaults apply otherwise (e.g. ``stride=8`` or ``window_size=128, num_global_tokens=8``).
    """

    mixers = {"strided": StridedAttention, "local_global": LocalGlobalAttention, "full": FullAttention}

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attention_type: str = "local_global",
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        **attention_kwargs,
    ) -> None:
        mixer = mixer_from_menu(self.mixers, attention_type, dim=dim, num_heads=num_heads, dropout=dropout,
                                **attention_kwargs)
        super().__init__(mixer, mlp_ratio=mlp_ratio, dropout=dropout)
