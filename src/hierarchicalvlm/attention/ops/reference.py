"""Dense, explicit-mask attention: the slow but obviously correct yardstick for every fast path.

Each sparse mechanism is defined by *which keys a query may see*.  The builders here
spell that pattern out as an explicit boolean matrix, and :func:`dense_attention`
runs a plain softmax over it.  Tests and benchmarks compare the sub-quadratic
implementations against ``dense_attention(q, k, v, builder(...))``; nothing in the
library calls these at training time (they are O(n^2) on purpose).
"""

from __future__ import annotations

from typing import Optional

import torch


def dense_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, scale: Optional[float] = None
) -> torch.Tensor:
    """Softmax attention restricted to an explicit pattern, computed in the inputs' dtype.

    Args:
        q: queries ``(B, H, N, d)``.
        k, v: keys and values ``(B, H, M, d)``.
        allowed: bool, broadcastable to ``(B, H, N, M)``; ``True`` means query ``i`` may attend key ``j``.
        scale: logit scale, ``1 / sqrt(d)`` by default.

    Returns:
        ``(B, H, N, d)``.  A query row with no allowed key gets zeros (and zero gradients)
        instead of the NaN a naive softmax would produce.
    """
    if allowed.dtype != torch.bool:
        raise ValueError(f"allowed must be a bool tensor (True = may attend), got dtype {allowed.dtype}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    logits = torch.matmul(q, k.transpose(-1, -2)) * scale
    allowed = allowed.expand_as(logits)
    has_key = allowed.any(dim=-1, keepdim=True)
    # Rows without any key: softmax over zeros, then every weight is masked to 0 -> output 0, finite grads.
    logits = logits.masked_fill(~allowed, float("-inf")).masked_fill(~has_key, 0.0)
    weights = torch.softmax(logits, dim=-1) * allowed
    return torch.matmul(weights, v)


def strided_mask(n: int, stride: int, causal: bool = False, device: Optional[torch.device] = None) -> torch.Tensor:
    """``(n, n)`` strided pattern: ``i`` sees ``j`` iff ``(i - j) % stride == 0`` (and ``j <= i`` if causal)."""
    pos = torch.arange(n, device=device)
    rel = pos[:, None] - pos[None, :]
    allowed = rel.remainder(stride) == 0
    if causal:
        allowed &= rel >= 0
    return allowed


def local_global_mask(
    n: int,
    window_size: int,
    global_idx: Optional[torch.Tensor] = None,
    causal: bool = False,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Pattern of local + global attention.

    Query ``i`` sees key ``j`` iff ``|i - j| <= window_size // 2``, or ``j`` is a global token,
    or ``i`` is a global token; with ``causal`` additionally only ``j <= i``.

    Args:
        global_idx: positions of the global tokens, ``(g,)`` or per sample ``(B, g)``; ``None`` for none.

    Returns:
        ``(n, n)`` for no / shared global tokens, ``(B, 1, n, n)`` for per-sample ones (broadcasts over heads),
        on ``device`` (default: that of ``global_idx``, else the CPU).
    """
    if device is None and global_idx is not None:
        device = global_idx.device
    pos = torch.arange(n, device=device)
    rel = pos[:, None] - pos[None, :]
    allowed = rel.abs() <= window_size // 2
    if global_idx is not None and global_idx.numel() > 0:
        is_global = torch.zeros(*global_idx.shape[:-1], n, dtype=torch.bool, device=device)
        is_global.scatter_(-1, global_idx, True)
        allowed = allowed | is_global[..., None, :] | is_global[..., :, None]
        if global_idx.dim() == 2:
            allowed = allowed[:, None]
    if causal:
        allowed = allowed & (rel >= 0)
    return allowed


def with_key_padding(allowed: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Restrict a pattern to real keys: ``allowed & mask[:, None, None, :]`` (``mask`` is ``(B, M)``, True = real)."""
    if mask is None:
        return allowed
    return allowed & mask[:, None, None, :]
