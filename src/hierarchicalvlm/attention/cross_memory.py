"""Cross-attention from a local segment to a memory of earlier content, fused back into the segment."""

from __future__ import annotations

from typing import Optional

import torch
from einops import rearrange
from torch import nn

from .base import check_heads, check_mask, check_sequence_input
from .ops.sdpa import sdpa


class CrossMemoryAttention(nn.Module):
    """Local tokens read from a memory bank through multi-head cross-attention, O(n * m).

    ``cross = proj(attention(q = local, k = v = memory))`` and, with ``residual=True``,
    ``out = (1 - fusion_ratio) * local + fusion_ratio * cross`` (else ``out = cross``).
    Padded memory tokens (``memory_mask`` False) are never read; a sample whose memory is all
    padding reads nothing (``cross = 0``).  Padded local rows (``local_mask`` False) are zero.

    The model's memory level (``memory_enabled``), not a level-2 choice of ``conf/attention/``: it takes two
    sequences.  The memory must have the model width ``dim``.

    Args:
        dim: model width of both ``local`` and ``memory``; ``num_heads`` must divide it.
        dropout: attention-weight dropout in training.
        fusion_ratio: weight of the cross-attention branch in the residual mix, in ``[0, 1]``.
        residual: mix the result with ``local`` (else return the cross-attention alone).
        qkv_bias: bias in the q/k/v and output projections.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dropout: float = 0.0,
        fusion_ratio: float = 0.5,
        residual: bool = True,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.head_dim = check_heads(dim, num_heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0.0 <= fusion_ratio <= 1.0:
            raise ValueError(f"fusion_ratio must be in [0, 1] (weight of the memory branch), got {fusion_ratio}")
        self.dim = dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.fusion_ratio = float(fusion_ratio)
        self.residual = residual
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=qkv_bias)

    def forward(
        self,
        local: torch.Tensor,
        memory: torch.Tensor,
        local_mask: Optional[torch.Tensor] = None,
        memory_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """``local`` ``(B, n, dim)``, ``memory`` ``(B, m, dim)``, masks ``(B, n)`` / ``(B, m)`` -> ``(B, n, dim)``."""
        check_sequence_input(local, self.dim, None, name="local")
        check_sequence_input(memory, self.dim, None, name="memory")
        if memory.shape[0] != local.shape[0]:
            raise ValueError(
                f"memory has batch size {memory.shape[0]} but local has {local.shape[0]}; they must match"
            )
        check_mask(local_mask, local, "local_mask")
        check_mask(memory_mask, memory, "memory_mask")

        q = rearrange(self.q(local), "b n (h d) -> b h n d", h=self.num_heads)
        k, v = rearrange(self.kv(memory), "b m (two h d) -> two b h m d", two=2, h=self.num_heads)
        attn_mask = None
        has_memory = None
        if memory_mask is not None:
            has_memory = memory_mask.any(dim=1)  # (B,)
            # An all-padding memory would give NaN rows; let it see everything, then drop the result.
            attn_mask = (memory_mask | ~has_memory[:, None])[:, None, None, :]
        attended = sdpa(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        cross = self.proj(rearrange(attended, "b h n d -> b n (h d)"))
        if has_memory is not None:
            cross = cross * has_memory[:, None, None].to(cross.dtype)

        out = (1.0 - self.fusion_ratio) * local + self.fusion_ratio * cross if self.residual else cross
        if local_mask is not None:
            out = out.masked_fill(~local_mask.unsqueeze(-1), 0.0)
        return out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, fusion_ratio={self.fusion_ratio}, residual={self.residual}"
