"""``scaled_dot_product_attention`` with a backend choice, and clear of a cuDNN bug with explicit masks.

On Hopper GPUs (H100/H200) with torch 2.11, cuDNN's SDPA backward returns NaN gradients for the queries
when an explicit ``attn_mask`` is passed (an all-True one too), the key length is 64 modulo 128 and a row's
log-sum-exp is very negative (pytorch/pytorch#196678). SDPA picks cuDNN by default there, and our models
hit it (the memory level reads 64 clip summaries at 16K tokens), so with ``backend="auto"`` a masked call
is restricted to the flash / memory-efficient / math kernels. Unmasked calls keep every kernel.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Optional

import torch
import torch.nn.functional as F

# ``backend`` choices -> names of torch.nn.attention.SDPBackend members
SDPA_BACKENDS = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "math": "MATH"}
MASKED_AUTO_BACKENDS = ("flash", "efficient", "math")


def sdpa_backend(backend: str, masked: bool = False) -> AbstractContextManager:
    """A context restricting SDPA to ``backend``; for ``"auto"``, none unless ``masked`` (then no cuDNN)."""
    if backend == "auto" and not masked:
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
    context = sdpa_backend(backend, masked=attn_mask is not None) if q.is_cuda else nullcontext()
    with context:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
