"""Sparse attention: strided, local + global (learned global tokens), cross-memory, and a block wrapper."""

from .cross_memory import CrossMemoryAttention
from .hierarchical_block import HierarchicalAttentionBlock
from .local_global import GlobalTokens, LocalGlobalAttention
from .strided import StridedAttention

__all__ = [
    "CrossMemoryAttention",
    "GlobalTokens",
    "HierarchicalAttentionBlock",
    "LocalGlobalAttention",
    "StridedAttention",
]
