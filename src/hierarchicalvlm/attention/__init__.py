"""Attention library: full softmax attention plus the seed's seven efficient mechanisms.

Quick start::

    from hierarchicalvlm.attention import StridedAttention
    out = StridedAttention(stride=4, dim=768, num_heads=12)(torch.randn(2, 1024, 768))
"""

from .base import ATTENTION_REGISTRY, SequenceMixer, build_attention, register_attention
from .block import AttentionBlock, FeedForward
from .full import FullAttention
from .linear import LinearAttentionBlock, MambaLayer, PerformerAttention
from .sparse import CrossMemoryAttention, HierarchicalAttentionBlock, LocalGlobalAttention, StridedAttention

__all__ = [
    "ATTENTION_REGISTRY",
    "AttentionBlock",
    "CrossMemoryAttention",
    "FeedForward",
    "FullAttention",
    "HierarchicalAttentionBlock",
    "LinearAttentionBlock",
    "LocalGlobalAttention",
    "MambaLayer",
    "PerformerAttention",
    "SequenceMixer",
    "StridedAttention",
    "build_attention",
    "register_attention",
]
