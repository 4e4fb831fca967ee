"""Attention library: full softmax attention, the efficient mechanisms, and the model's cross-memory attention.

Quick start::

    from hierarchicalvlm.attention import StridedAttention
    out = StridedAttention(stride=4, dim=768, num_heads=12)(torch.randn(2, 1024, 768))

The mechanisms a config can choose are the files of ``conf/attention/`` (:mod:`.registry`).
"""

from .base import SequenceMixer
from .block import AttentionBlock, FeedForward
from .cross_memory import CrossMemoryAttention
from .full import FullAttention
from .linear import LinearAttentionBlock, MambaLayer, PerformerAttention
from .registry import build_mechanism, mechanism_names
from .sparse import HierarchicalAttentionBlock, LocalGlobalAttention, StridedAttention

__all__ = [
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
    "build_mechanism",
    "mechanism_names",
]
