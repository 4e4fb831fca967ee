"""The text side: a small transformer over word ids, read out at the leading ``<cls>`` token."""

from __future__ import annotations

import torch
from torch import nn

from hierarchicalvlm.attention import AttentionBlock, FullAttention

from .config import NetConfig


class TextEncoder(nn.Module):
    """Encode (B, L) token ids with a (B, L) mask into one (B, D) vector per text (and, asked, its token states)."""

    def __init__(self, vocab_size: int, config: NetConfig) -> None:
        super().__init__()
        dim, num_heads, mlp_ratio, dropout = config.dim, config.num_heads, config.mlp_ratio, config.dropout
        depth, max_length = config.text_depth, config.max_text_length
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(max_length, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(
            AttentionBlock(FullAttention(dim, num_heads, dropout), mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, tokens: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The text's vector (B, D); with ``tokens``, also every token's state (B, L, D)."""
        length = ids.shape[1]
        if length > self.pos.shape[0]:
            raise ValueError(
                f"text of {length} tokens exceeds model.net.max_text_length={self.pos.shape[0]}; "
                "raise it or lower data.max_text_length"
            )
        x = self.embed(ids) + self.pos[:length]
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        return (x[:, 0], x) if tokens else x[:, 0]
