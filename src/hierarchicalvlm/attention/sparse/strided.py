"""Strided (dilated) attention: each token attends every ``stride``-th token, in O(n^2 / stride)."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hierarchicalvlm.utils.checks import check_positive

from ..base import SequenceMixer, split_heads
from ..ops.kernel_policy import SDPA_KERNELS
from ..ops.sdpa import sdpa


class StridedAttention(SequenceMixer):
    """Multi-head attention in which token ``i`` attends token ``j`` iff ``(i - j) % stride == 0``.

    With ``causal=True`` additionally only ``j <= i``.  The tokens sharing a residue modulo
    ``stride`` form ``stride`` independent sequences of length ``n / stride``; each is a
    contiguous slice after a reshape, so attention runs as ``stride`` ordinary dense
    attentions (fast SDPA kernels) with total work O(n^2 / stride) — no ``n x n`` matrix.
    A token therefore reaches far-away tokens cheaply, but only those in its own residue class.

    Args:
        dim: model width; ``num_heads`` must divide it.
        stride: distance between attended tokens (>= 1; 1 is full attention).
        dropout: attention-weight dropout in training.
        causal: only attend to earlier positions.
        qkv_bias: bias in the q/k/v and output projections.
        kernel: the SDPA kernel (``auto``, ``torch``, ``fused`` or a pinned ``flash`` / ``cudnn`` / ``efficient``;
            see :mod:`..ops.kernel_policy`).
    """

    supports_causal = True
    kernels = SDPA_KERNELS

    def __init__(
        self,
        dim: int,
        num_heads: int,
        stride: int = 4,
        dropout: float = 0.0,
        causal: bool = False,
        qkv_bias: bool = True,
        kernel: str = "auto",
    ) -> None:
        check_positive(stride=stride)
        super().__init__(dim, num_heads, dropout, causal, kernel)
        self.stride = int(stride)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=qkv_bias)

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        n = x.shape[1]
        s = self.stride
        class_len = math.ceil(n / s)
        tail = class_len * s - n
        # Position p = a * s + r goes to residue class r, slot a: classes become batch entries. The tokens are
        # regrouped before the q/k/v projection and after the output projection (both act per token), so only
        # x and the output are copied, not the three times wider q/k/v.
        grouped = rearrange(F.pad(x, (0, 0, 0, tail)) if tail else x, "b (a r) c -> b r a c", r=s)
        if mask is None:
            # Without padding no mask is needed even when s does not divide n: the first s - tail classes have
            # class_len tokens, the others one fewer; each group runs unmasked (the fast SDPA kernels).
            full = s - tail
            out = grouped.new_zeros(grouped.shape)
            out[:, :full] = self._attend(grouped[:, :full], None)
            if tail and class_len > 1:
                out[:, full:, :-1] = self._attend(grouped[:, full:, :-1], None)
        else:
            out = self._attend(grouped, self._class_mask(mask, tail))
        return rearrange(out, "b r a c -> b (a r) c")[:, :n]

    def _attend(self, classes: torch.Tensor, attn_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Attention within each class of ``classes`` ``(B, classes, class_len, C)``; same shape out."""
        b, r, a, c = classes.shape
        qkv = self.qkv(classes.reshape(b * r, a, c))
        q, k, v = split_heads(qkv, self.num_heads)
        out = sdpa(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and attn_mask is None,
            kernel=self.kernel,
        )
        return self.proj(rearrange(out, "br h a d -> br a (h d)")).view(b, r, a, c)

    def _class_mask(self, mask: torch.Tensor, tail: int) -> torch.Tensor:
        """Boolean mask for the per-class attention of a padded batch (``mask`` ``(B, n)``, True = real).

        Non-causal: a key-padding mask ``(B * stride, 1, 1, n/stride)`` that SDPA broadcasts, so memory stays
        linear in n. It must be contiguous: the regrouping below is a transpose, and SDPA's CPU kernel copies a
        strided mask into a dense ``(B * stride, heads, n/stride, n/stride)`` one, O(n^2 / stride) bytes
        (256 MB at n = 16K). Causal: ``(B * stride, 1, n/stride, n/stride)``, quadratic in the class length.
        """
        real = rearrange(F.pad(mask, (0, tail), value=False), "b (a r) -> (b r) a", r=self.stride).contiguous()
        if not self.causal:
            # A real query is a real key of its own class, so a class without any real key holds only padded
            # queries (whose outputs are zeroed): letting them see every key keeps their rows finite.
            return (real | ~real.any(dim=1, keepdim=True))[:, None, None, :]
        class_len = real.shape[1]
        allowed = real[:, None, None, :] & torch.ones(class_len, class_len, dtype=torch.bool, device=mask.device).tril()
        # A query always sees itself: a padded query with no real key before it would otherwise get a NaN row.
        return allowed | torch.eye(class_len, dtype=torch.bool, device=mask.device)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, stride={self.stride}"
