"""Compatibility path of the seed (``hierarchicalvlm.attention.sparse.sparse_attention``)."""

from . import CrossMemoryAttention, HierarchicalAttentionBlock, LocalGlobalAttention, StridedAttention

__all__ = ["CrossMemoryAttention", "HierarchicalAttentionBlock", "LocalGlobalAttention", "StridedAttention"]
