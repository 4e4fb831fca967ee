"""Sparse attention: strided, local + global (learned global tokens), and a block wrapper."""

from .hierarchical_block import HierarchicalAttentionBlock
from .local_global import GlobalTokens, LocalGlobalAttention
from .strided import StridedAttention

__all__ = ["GlobalTokens", "HierarchicalAttentionBlock", "LocalGlobalAttention", "StridedAttention"]
