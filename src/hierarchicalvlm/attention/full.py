"""Full softmax attention: the O(n^2) baseline every other mechanism is measured against."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .base import SequenceMixer, register_attention


@register_attention("full")
class FullAttention(SequenceMixer):
    """Multi-head softmax attention through ``scaled_dot_product_attention``.

    SDPA picks the fastest kernel the device offers (flash / cuDNN / memory-efficient
    on GPU); with a padding mask it falls back to a kernel that accepts masks.
    """

    supports_causal = True

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, causal: bool = False, bias: bool = True) -> None:
        super().__init__(dim, num_heads, dropout, causal)
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
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
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and mask is None,
        )
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))
