"""Local + global attention through FlexAttention: a fused, block-sparse GPU kernel.

The keys are laid out as ``[g global keys ; n sequence keys]``.  The *block* mask is
static — global columns always on, sequence columns inside the window ``|q - kv| <= w/2``
(and ``kv <= q`` if causal) — so it is built once per ``(n, window, g, causal, device)``
and cached; FlexAttention then skips every all-masked 128x128 block, which is what makes
the cost O(n * (window + g)).  The per-batch details (which tokens are padding, where the
global tokens sit, counting a global key once when it is also inside the window) change
every call and are applied element-wise by a ``score_mod`` that reads captured tensors,
so they never force the block mask to be rebuilt.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import torch

from .local_window import gather_positions

try:  # FlexAttention exists from torch 2.5 on; keep the package importable without it.
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
except ImportError:  # pragma: no cover - depends on the installed torch
    BlockMask = None  # type: ignore[assignment,misc]
    create_block_mask = None  # type: ignore[assignment]
    flex_attention = None  # type: ignore[assignment]

MIN_FLEX_HEAD_DIM = 16  # the Triton kernels reject smaller head dimensions

_compiled_flex_attention: Optional[Callable] = None


def flex_available() -> bool:
    """Whether this torch build ships FlexAttention."""
    return flex_attention is not None


def _compiled() -> Callable:
    """``flex_attention`` wrapped in ``torch.compile`` once per process (the fused kernel needs compilation)."""
    global _compiled_flex_attention
    if _compiled_flex_attention is None:
        _compiled_flex_attention = torch.compile(flex_attention)
    return _compiled_flex_attention


@functools.lru_cache(maxsize=32)
def local_global_block_mask(
    n: int, half_window: int, num_global: int, causal: bool, device: torch.device
) -> "BlockMask":
    """Static block mask over keys ``[num_global global ; n sequence]`` for ``n`` queries (cached)."""
    if not flex_available():
        raise RuntimeError("FlexAttention is not available in this torch build")

    def mask_mod(b, h, q_idx, kv_idx):
        seq_pos = kv_idx - num_global
        in_window = (q_idx - seq_pos).abs() <= half_window
        if causal:
            in_window = in_window & (seq_pos <= q_idx)
        return (kv_idx < num_global) | in_window

    return create_block_mask(
        mask_mod, B=None, H=None, Q_LEN=n, KV_LEN=num_global + n, device=device, _compile=device.type == "cuda"
    )


def flex_local_global_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    half_window: int,
    causal: bool = False,
    key_mask: Optional[torch.Tensor] = None,
    global_positions: Optional[torch.Tensor] = None,
    compiled: bool = True,
) -> torch.Tensor:
    """Same pattern and result as :func:`~hierarchicalvlm.attention.ops.local_window_attention`, via FlexAttention.

    Query ``i`` sees key ``j`` iff ``|i - j| <= half_window`` (and ``j <= i`` if causal), or ``j`` is a
    global token (and ``j <= i`` if causal); padded keys are hidden except a query's own (keeps rows
    of padded queries finite).  No attention dropout (FlexAttention has none).

    Args:
        q, k, v: ``(B, H, n, d)``, all of one dtype.
        key_mask: ``(B, n)`` bool, True = real token.
        global_positions: ``(B, g)`` long, distinct positions of the global keys.
        compiled: run the fused ``torch.compile`` kernel (GPU).  ``False`` runs FlexAttention's eager
            reference, which materialises all scores — only for checking the masks on small CPU inputs.

    Returns:
        ``(B, H, n, d)``.
    """
    b, _, n, _ = q.shape
    num_global = 0 if global_positions is None else global_positions.shape[1]
    real = torch.ones(b, n, dtype=torch.bool, device=q.device) if key_mask is None else key_mask
    if num_global > 0:
        k = torch.cat([gather_positions(k, global_positions), k], dim=2)
        v = torch.cat([gather_positions(v, global_positions), v], dim=2)
        real = torch.cat([real.gather(1, global_positions), real], dim=1)
    block_mask = local_global_block_mask(n, half_window, num_global, causal, q.device)

    def score_mod(score, b_idx, h_idx, q_idx, kv_idx):
        seq_pos = kv_idx - num_global
        key_real = real[b_idx, kv_idx]
        keep = key_real | (seq_pos == q_idx)  # sequence column: real key, or the query itself
        if num_global > 0:
            global_pos = global_positions[b_idx, torch.clamp(kv_idx, max=num_global - 1)]
            # A global column counts only outside the window (inside it the sequence column is that key).
            keep_global = key_real & ((q_idx - global_pos).abs() > half_window)
            if causal:
                keep_global = keep_global & (global_pos <= q_idx)
            keep = torch.where(kv_idx < num_global, keep_global, keep)
        return torch.where(keep, score, -float("inf"))

    needs_score_mod = key_mask is not None or num_global > 0
    attend = _compiled() if compiled else flex_attention
    return attend(q, k, v, score_mod=score_mod if needs_score_mod else None, block_mask=block_mask)
