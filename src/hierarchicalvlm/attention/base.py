"""The contract every swappable attention mechanism ("sequence mixer") follows.

All mechanisms map ``x: (B, N, D) -> (B, N, D)`` and accept an optional boolean
``mask: (B, N)`` in which ``True`` marks a real token and ``False`` padding (the
convention of ``scaled_dot_product_attention``'s boolean masks).  Padded tokens
never influence real ones; the outputs at padded positions are zero.

A new mechanism subclasses :class:`SequenceMixer` and adds one YAML file under
``conf/attention/`` (the only list of mechanisms, see :mod:`.registry`). The shared
test-suite (``tests/attention/test_contract.py``) then picks it up.
"""

from __future__ import annotations

from typing import ClassVar, Optional

import torch
from torch import nn

from hierarchicalvlm.utils.checks import check_positive

from .ops.kernel_policy import KERNELS, check_kernel


def check_heads(dim: int, num_heads: int) -> int:
    """Validate ``dim``/``num_heads`` and return the per-head size."""
    check_positive(dim=dim, num_heads=num_heads)
    if dim % num_heads != 0:
        raise ValueError(
            f"dim ({dim}) must be divisible by num_heads ({num_heads}); "
            f"pick num_heads among the divisors of {dim}"
        )
    return dim // num_heads


def check_mask(mask: Optional[torch.Tensor], tokens: torch.Tensor, name: str = "mask") -> None:
    """Validate an optional ``(B, N)`` bool mask (True = real token) for ``tokens`` of shape ``(B, N, D)``."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.shape != tokens.shape[:2]:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must have shape (batch, seq_len) = {tuple(tokens.shape[:2])}, got {shape}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor (True = real token), got dtype {mask.dtype}")


def check_sequence_input(x: torch.Tensor, dim: int, mask: Optional[torch.Tensor], name: str = "x") -> None:
    """Validate a ``(B, N, D)`` input and its optional ``(B, N)`` boolean mask."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (batch, seq_len, dim), got {shape}")
    if x.shape[-1] != dim:
        raise ValueError(f"{name} has feature size {x.shape[-1]} but the module was built with dim={dim}")
    check_mask(mask, x)


def split_heads(qkv: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v ``(B, H, N, d)`` from a fused projection's output ``(B, N, 3 * H * d)``: views, no copy.

    The three are taken apart along the features first, then each is split into heads, so each view is stored
    token-major. The usual ``rearrange(qkv, "b n (three h d) -> three b h n d")`` and unpacking gives the same
    views, but its backward stacks the three head-major gradients and copies that stack back into the projection's
    layout: two passes over 3 x B x N x D. Here the backward is one concatenation: FlexAttention allocates its
    gradients in its inputs' layout and SDPA's flash/cuDNN kernels in ``(B, N, H, d)``, both token-major, so no
    transposing copy remains (about 1 ms of a layer step at 131K tokens on an H200: docs/PERFORMANCE.md, issue 14).
    """
    q, k, v = qkv.chunk(3, dim=-1)
    return tuple(t.unflatten(-1, (num_heads, -1)).transpose(1, 2) for t in (q, k, v))  # type: ignore[return-value]


class SequenceMixer(nn.Module):
    """Base class of the swappable long-range mechanisms.

    Subclasses implement :meth:`mix` on validated inputs; :meth:`forward`
    validates, calls it, and zeroes padded positions.

    Attributes:
        causal: whether token ``i`` only sees tokens ``<= i``.
        kernel: the ``kernel`` knob (``auto``, ``torch``, ``fused``; see :mod:`.ops.kernel_policy`).
        supports_causal: whether the mechanism has a causal mode at all.
        kernels: the values its ``kernel`` knob takes.
    """

    supports_causal: ClassVar[bool] = False
    kernels: ClassVar[tuple[str, ...]] = KERNELS

    def __init__(
        self, dim: int, num_heads: int, dropout: float = 0.0, causal: bool = False, kernel: str = "auto"
    ) -> None:
        super().__init__()
        self.head_dim = check_heads(dim, num_heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if causal and not self.supports_causal:
            raise ValueError(f"{type(self).__name__} has no causal mode; set causal=false")
        self.dim = dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.causal = causal
        self.kernel = check_kernel(kernel, self.kernels)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        check_sequence_input(x, self.dim, mask)
        out = self.mix(x, mask)
        if mask is not None:
            out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        return out

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, causal={self.causal}"
