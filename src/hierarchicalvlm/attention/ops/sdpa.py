"""``scaled_dot_product_attention`` on the SDPA kernels that :mod:`.kernel_policy` allows for the call."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Optional

import torch
import torch.nn.functional as F

from .kernel_policy import sdpa_backends


def sdpa_backend(
    kernel: str, masked: bool = False, key_length: int = 0, is_cuda: bool = True
) -> AbstractContextManager:
    """A context restricting SDPA to the kernels :func:`.kernel_policy.sdpa_backends` allows (none: no restriction)."""
    names = sdpa_backends(kernel, masked, key_length, is_cuda)
    if names is None:
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([getattr(SDPBackend, name) for name in names])


def sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    kernel: str = "auto",
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` under the mechanism's ``kernel`` knob (see :mod:`.kernel_policy`)."""
    with sdpa_backend(kernel, masked=attn_mask is not None, key_length=k.shape[-2], is_cuda=q.is_cuda):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
