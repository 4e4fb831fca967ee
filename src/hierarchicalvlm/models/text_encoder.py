"""The text side: a small transformer over word ids, read out at the leading ``<cls>`` token."""

from __future__ import annotations

import torch
from torch import nn

from hierarchicalvlm.attention import AttentionBlock, FullAttention


class TextEncoder(nn.Module):
    """Encode (B, L) token ids with a (B, L) mask into one (B, D) vector per text."""

    def __init__(
        self, vocab_size: int, dim: int, num_heads: int, depth: int = 1, max_length: int = 64,
        mlp_ratio: float = 2.0, dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(max_length, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(
            AttentionBlock(FullAttention(dim, num_heads, dropout), mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        if length > self.pos.shape[0]:
            raise ValueError(
                f"text of {length} tokens exceeds model.net.max_text_length={self.pos.shape[0]}; "
                "raise it or lower data.max_text_length"
            )
        x = self.embed(ids) + self.pos[:length]
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x[:, 0])
