"""``scaled_dot_product_attention`` with a backend choice, clear of cuDNN's NaN gradients on Hopper.

On H100/H200 with torch 2.11, cuDNN's SDPA backward can return NaN gradients for the queries: reported with
an explicit ``attn_mask`` and a key length of 64 modulo 128 (pytorch/pytorch#196678). Our training went NaN
with *unmasked* calls too: at 16K level-2 tokens on an H200, every run that let SDPA pick cuDNN for the
64-key calls (the per-frame level over 8×8 patches, the memory level over 64 clip summaries) had NaN
gradients by step 4, and the same runs with cuDNN SDPA disabled, or in fp32, stayed finite
(docs/PERFORMANCE.md). So under ``backend="auto"`` cuDNN is allowed only for unmasked calls whose key length
is a multiple of 128 (long sequences, where it is the fastest kernel); every other call is restricted to the
flash / memory-efficient / math kernels. A pinned ``backend`` is always obeyed.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Optional

import torch
import torch.nn.functional as F

# ``backend`` choices -> names of torch.nn.attention.SDPBackend members
SDPA_BACKENDS = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "math": "MATH"}
MASKED_AUTO_BACKENDS = ("flash", "efficient", "math")


def cudnn_is_safe(masked: bool, key_length: int) -> bool:
    """Whether ``backend="auto"`` may use cuDNN: unmasked, with a key length that is a multiple of 128."""
    return not masked and key_length % 128 == 0


def sdpa_backend(backend: str, masked: bool = False, key_length: int = 0) -> AbstractContextManager:
    """A context restricting SDPA to ``backend``; for ``"auto"``, to every kernel but cuDNN unless
    :func:`cudnn_is_safe`."""
    if backend == "auto" and cudnn_is_safe(masked, key_length):
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = MASKED_AUTO_BACKENDS if backend == "auto" else (backend,)
    return sdpa_kernel([getattr(SDPBackend, SDPA_BACKENDS[name]) for name in names])


def sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` on the chosen backend (CUDA only; CPU always picks its own)."""
    context = sdpa_backend(backend, masked=attn_mask is not None, key_length=k.shape[-2]) if q.is_cuda else nullcontext()
    with context:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
