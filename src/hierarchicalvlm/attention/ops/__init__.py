"""Attention kernels, one family per submodule.

Exported here: the local + global kernels — the blocked sliding window (pure PyTorch, any device)
and its FlexAttention twins (fused, GPU: learned global tokens merged by log-sum-exp, or fixed ones in the mask).
"""

from .flex import flex_available, flex_local_global_attention, flex_static_global_attention, local_window_block_mask
from .local_window import gather_positions, local_window_attention

__all__ = [
    "flex_available",
    "flex_local_global_attention",
    "flex_static_global_attention",
    "gather_positions",
    "local_window_block_mask",
    "local_window_attention",
]
