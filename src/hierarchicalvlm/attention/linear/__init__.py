"""Linear-time mixers: Performer (FAVOR+ random-feature attention) and Mamba (selective state space)."""

from .linear_block import LinearAttentionBlock
from .mamba import MambaLayer
from .performer import PerformerAttention

__all__ = ["LinearAttentionBlock", "MambaLayer", "PerformerAttention"]
