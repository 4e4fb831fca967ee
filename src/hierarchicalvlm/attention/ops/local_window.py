"""Sliding-window attention with a few extra global keys, in O(n * (window + g)) time and memory.

Pure PyTorch, so it runs (and differentiates) on any device.  Queries are cut into
chunks of ``c = window_size // 2`` tokens; a chunk only needs the keys of itself and
its two neighbouring chunks (``3c`` keys; causal: the previous one, ``2c``).  All chunks
then go through one batched ``scaled_dot_product_attention`` (fused kernels where the
device has them) of ``c`` queries over ``3c + g`` keys: the gathered global keys are
appended to every chunk's keys and share one softmax with them.  Work and memory are
``(n / c) * c * (3c + g)`` instead of ``n * n``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .sdpa import sdpa


def gather_positions(t: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Pick tokens per sample: ``t`` ``(B, H, n, d)``, ``positions`` ``(B, g)`` -> ``(B, H, g, d)``."""
    b, h, _, d = t.shape
    index = positions[:, None, :, None].expand(b, h, positions.shape[1], d)
    return t.gather(2, index)


def local_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    half_window: int,
    causal: bool = False,
    key_mask: Optional[torch.Tensor] = None,
    global_positions: Optional[torch.Tensor] = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Each query attends the keys within ``half_window`` positions of it, plus the global keys.

    Query ``i`` sees key ``j`` iff ``|i - j| <= half_window`` (and ``j <= i`` if causal), or ``j`` is
    one of ``global_positions`` (and ``j <= i`` if causal).  A global key that already lies in the
    query's window is counted once.  Padded keys (``key_mask`` False) are never seen, except that a
    query always sees itself so that rows of padded queries stay finite (callers discard those rows).

    Global *queries* (global tokens seeing every key) are not handled here; see
    :class:`~hierarchicalvlm.attention.sparse.LocalGlobalAttention`.

    Args:
        q, k, v: ``(B, H, n, d)``.
        half_window: ``window_size // 2`` (>= 0).
        key_mask: ``(B, n)`` bool, True = real token; ``None`` = all real.
        global_positions: ``(B, g)`` long, distinct positions of the global keys; ``None`` = none.
        dropout_p: dropout on the attention weights.

    Returns:
        ``(B, H, n, d)``.
    """
    if half_window < 0:
        raise ValueError(f"half_window must be >= 0, got {half_window}")
    b, h, n, d = q.shape
    chunk = max(1, min(half_window, n))
    num_chunks = math.ceil(n / chunk)
    n_pad = num_chunks * chunk
    # Chunk i needs the keys of chunks i-1, i, i+1 (causal: i-1, i), i.e. padded[i*c : i*c + span].
    right = 0 if causal else chunk
    span = chunk + chunk + right

    def chunk_windows(t: torch.Tensor) -> torch.Tensor:
        """``(B, H, n, d)`` -> ``(B, nc, H, span, d)``: each chunk's window of keys (or values)."""
        windows = F.pad(t, (0, 0, chunk, n_pad - n + right)).unfold(2, span, chunk)  # (B, H, nc, d, span)
        return windows.permute(0, 2, 1, 4, 3)

    q_chunks = F.pad(q, (0, 0, 0, n_pad - n)).view(b, h, num_chunks, chunk, d).transpose(1, 2)  # (B, nc, H, c, d)
    k_chunks, v_chunks = chunk_windows(k), chunk_windows(v)
    # (nc, c, span), or (B, nc, c, span) with a key mask
    allowed = _window_pattern(n, n_pad, chunk, span, half_window, causal, key_mask, q.device)

    if global_positions is not None and global_positions.shape[1] > 0:
        g = global_positions.shape[1]
        # The same g global keys are appended to every chunk's window and share its softmax.
        g_keys = gather_positions(k, global_positions)[:, None].expand(b, num_chunks, h, g, d)
        g_values = gather_positions(v, global_positions)[:, None].expand(b, num_chunks, h, g, d)
        k_chunks = torch.cat([k_chunks, g_keys], dim=3)
        v_chunks = torch.cat([v_chunks, g_values], dim=3)
        q_pos = torch.arange(n_pad, device=q.device).view(num_chunks, chunk)
        g_rel = q_pos[None, :, :, None] - global_positions[:, None, None, :]  # (B, nc, c, g)
        # Outside the window only: inside it the same key is already a window column.
        g_allowed = g_rel.abs() > half_window
        if causal:
            g_allowed &= g_rel > 0
        if key_mask is not None:
            g_allowed &= key_mask.gather(1, global_positions)[:, None, None, :]
        allowed = torch.cat([allowed.expand(b, num_chunks, chunk, span), g_allowed], dim=-1)

    keys = k_chunks.shape[3]
    out = sdpa(
        q_chunks.reshape(b * num_chunks, h, chunk, d),
        k_chunks.reshape(b * num_chunks, h, keys, d),
        v_chunks.reshape(b * num_chunks, h, keys, d),
        attn_mask=allowed.expand(b, num_chunks, chunk, keys).reshape(b * num_chunks, 1, chunk, keys),
        dropout_p=dropout_p,
    )
    return out.view(b, num_chunks, h, chunk, d).transpose(1, 2).reshape(b, h, n_pad, d)[:, :, :n]


def _window_pattern(
    n: int,
    n_pad: int,
    chunk: int,
    span: int,
    half_window: int,
    causal: bool,
    key_mask: Optional[torch.Tensor],
    device: torch.device,
) -> torch.Tensor:
    """Which of its chunk's ``span`` window keys each query may see.

    Returns ``(nc, c, span)``, or ``(B, nc, c, span)`` when there is a key mask.
    """
    right = span - 2 * chunk
    q_pos = torch.arange(n_pad, device=device).view(-1, chunk)
    k_pos = torch.arange(-chunk, n_pad + right, device=device).unfold(0, span, chunk)  # (nc, span)
    rel = q_pos[:, :, None] - k_pos[:, None, :]  # (nc, c, span)
    allowed = rel.abs() <= half_window
    if causal:
        allowed &= rel >= 0
    key_ok = (k_pos >= 0) & (k_pos < n)
    if key_mask is not None:
        key_ok = key_ok & F.pad(key_mask, (chunk, n_pad - n + right), value=False).unfold(1, span, chunk)
    # A query always sees itself: keeps padded queries (and the chunk padding) finite.
    return allowed & (key_ok[..., None, :] | (rel == 0))
