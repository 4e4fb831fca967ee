"""Full softmax attention: the O(n^2) baseline every other mechanism is measured against."""

from __future__ import annotations

from typing import Optional

import torch
from einops import rearrange
from torch import nn

from .base import SequenceMixer, split_heads
from .ops.kernel_policy import SDPA_KERNELS
from .ops.sdpa import sdpa


class FullAttention(SequenceMixer):
    """Multi-head softmax attention through ``scaled_dot_product_attention``.

    With ``kernel="auto"`` SDPA picks a kernel itself (flash / cuDNN / memory-efficient on GPU; with a
    padding mask one that accepts masks); ``kernel="cudnn"`` etc. pins one where it is faster on a card
    (scripts/bench_attention.py measures each), ``kernel="torch"`` runs SDPA's math kernel
    (:mod:`.ops.kernel_policy`). Pinned fused kernels apply on CUDA only.
    """

    supports_causal = True
    kernels = SDPA_KERNELS

    def __init__(
        self, dim: int, num_heads: int, dropout: float = 0.0, causal: bool = False, bias: bool = True,
        kernel: str = "auto",
    ) -> None:
        super().__init__(dim, num_heads, dropout, causal, kernel)
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        q, k, v = split_heads(self.qkv(x), self.num_heads)
        attn_mask = None
        if mask is not None:
            # (B, 1, 1, N): every query may look at every real key.  A causal mask is folded in,
            # because SDPA refuses attn_mask together with is_causal.
            attn_mask = mask[:, None, None, :]
            if self.causal:
                n = x.shape[1]
                causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
                # A padded query may have no real key before it; letting it see itself keeps its row
                # finite (its output is zeroed anyway) without touching any real token.
                attn_mask = (attn_mask & causal) | torch.eye(n, dtype=torch.bool, device=x.device)
        out = sdpa(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and mask is None, kernel=self.kernel,
        )
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))
