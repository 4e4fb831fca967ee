"""Compatibility path of the original specification; the classes live in performer.py, mamba.py, linear_block.py."""

from .linear_block import LinearAttentionBlock
from .mamba import MambaLayer
from .performer import PerformerAttention

__all__ = ["LinearAttentionBlock", "MambaLayer", "PerformerAttention"]
