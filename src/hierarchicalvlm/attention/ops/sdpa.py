"""``scaled_dot_product_attention`` on the SDPA kernels that :mod:`.kernel_policy` allows for the call."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Optional

import torch
import torch.nn.functional as F

from .kernel_policy import sdpa_backends

# CUDA launches SDPA's kernels with batch and heads on grid axes limited to 65,535 blocks; more sequences fail with
# "CUDA error: invalid argument" (the level-1 attention of a 4,096-frame video of batch 32 has 32,768 clips x heads).
CUDA_MAX_SEQUENCES = 65_535


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
    """``F.scaled_dot_product_attention`` under the mechanism's ``kernel`` knob (see :mod:`.kernel_policy`).

    A batch with more (batch x heads) sequences than CUDA's kernel grid allows runs in batch chunks (on every
    device, so the CPU tests cover the split)."""
    with sdpa_backend(kernel, masked=attn_mask is not None, key_length=k.shape[-2], is_cuda=q.is_cuda):
        chunk = max(1, CUDA_MAX_SEQUENCES // max(1, q.shape[1])) if q.dim() == 4 else q.shape[0]
        if q.shape[0] <= chunk:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
        return torch.cat([
            F.scaled_dot_product_attention(
                q[i : i + chunk], k[i : i + chunk], v[i : i + chunk], attn_mask=_batch_slice(attn_mask, i, chunk),
                dropout_p=dropout_p, is_causal=is_causal,
            )
            for i in range(0, q.shape[0], chunk)
        ])


def _batch_slice(mask: Optional[torch.Tensor], start: int, size: int) -> Optional[torch.Tensor]:
    """The rows of a mask that broadcasts over the batch (batch dimension 1 or absent) or has one row per sample."""
    if mask is None or mask.dim() < 4 or mask.shape[0] == 1:
        return mask
    return mask[start : start + size]
