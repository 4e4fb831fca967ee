"""Strided attention with a padding mask allocates nothing of size O(n^2 / stride) when non-causal."""

from __future__ import annotations

import torch
from hierarchicalvlm.attention.sparse import StridedAttention


def largest_allocation(fn) -> int:
    """Bytes of the largest single CPU allocation made while ``fn()`` runs (the autograd profiler without
    Kineto: it records every allocation, kernels' internal copies included, and starts in milliseconds)."""
    with torch.autograd.profiler.profile(profile_memory=True, use_kineto=False) as prof:
        fn()
    return max((e.cpu_memory_usage for e in prof.function_events), default=0)


def test_padded_non_causal_strided_attention_stays_linear_in_memory() -> None:
    n, stride, heads, dim = 2048, 4, 2, 16
    torch.manual_seed(0)
    module = StridedAttention(dim, heads, stride=stride).eval()
    x = torch.randn(1, n, dim)
    mask = torch.ones(1, n, dtype=torch.bool)
    mask[:, -100:] = False  # a padded video: the masked path
    class_len = n // stride
    dense_mask_bytes = stride * heads * class_len * class_len  # the (B*stride, heads, a, a) bool copy
    with torch.no_grad():
        largest = largest_allocation(lambda: module(x, mask))
        out = module(x, mask)
    assert torch.isfinite(out).all() and (out[:, -100:] == 0).all()
    # before the fix the largest allocation was a dense copy of the mask: 4 MiB here, 256 MB at 16K
    assert largest < dense_mask_bytes // 4, f"largest allocation {largest} B >= {dense_mask_bytes // 4} B"
    assert module._class_mask(mask, 0).is_contiguous()
