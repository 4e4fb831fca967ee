"""Local + global attention through FlexAttention: a fused, block-sparse GPU kernel.

The sliding window runs in FlexAttention with a *static* block mask (``|q - kv| <= w/2``, and
``kv <= q`` if causal), built once per ``(n, window, causal, device)`` and cached; FlexAttention skips
every all-masked 128x128 block, which makes the cost O(n * window).  The g global keys (which change
every call) are a small dense ``(n, g)`` block computed beside it, and the two softmax parts are merged
exactly through FlexAttention's log-sum-exp.  Keeping the per-call global positions out of the fused
kernel matters: reading them element-wise in a ``score_mod`` made the kernel ~30x slower on an H200.
Padding is applied element-wise by a ``score_mod`` only when the batch has padding.

Global keys at *fixed* positions (the first or the last g tokens, :func:`flex_static_global_attention`)
need no merge: they are part of the static block mask (``in_window | kv is global``), so window and
global keys are one FlexAttention call.  The g global *query* rows can join the mask too (``global_rows``):
then one call is the whole pattern, but their row block walks all n/128 key blocks alone, a straggler that
grows with n; so long sequences keep those rows outside and the caller computes them densely.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

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


@dataclasses.dataclass(frozen=True)
class StaticMaskTiles:
    """Block size of the static window masks and the FlexAttention kernel tiles that run them on a GPU.

    Attributes:
        block_size: (query rows, key columns) of one mask block; FlexAttention skips all-masked blocks and evaluates
            the mask element-wise in partial ones, so smaller blocks waste less of a window's edges.
        kernel_options: FlexAttention ``kernel_options`` pairs (``fwd_``/``bwd_`` prefixed tile sizes, stages, warps);
            the kernel tiles must divide the mask blocks. Empty: FlexAttention's defaults for the device.
    """

    block_size: tuple[int, int] = (128, 128)
    kernel_options: tuple[tuple[str, Any], ...] = ()


BACKWARD_64_TILES = (("bwd_BLOCK_M1", 64), ("bwd_BLOCK_N1", 64), ("bwd_BLOCK_N2", 64), ("bwd_BLOCK_M2", 64),
                ("bwd_num_warps", 4), ("bwd_num_stages", 3))  # fmt: skip
# (from this sequence length on, these tiles), the last entry that applies wins. Every query sees the global keys, so
# the backward's program for the first key block walks all n/BLOCK_M1 query blocks (and a global query row block all
# key blocks): stragglers whose length grows with n. From 16K tokens on, 64 x 64 backward tiles (half the work per
# step of a straggler) beat FlexAttention's default (64 x 128, 8 warps) for the window of 512 + 16 fixed globals:
# 7.5 against 8.1 ms at 16K on an H200, while at 4K they lost (11.8 against 10.7 ms; scripts/probes/flex_tiles.py).
# The whole benchmark's 16K and 64K cells of that time ran symbolic-length kernels (fixed since: benchmark/cases.py,
# specialize_every_length), so the probe's static figures are the evidence (docs/PERFORMANCE.md, issue 14).
STATIC_MASK_TILES: tuple[tuple[int, StaticMaskTiles], ...] = (
    (0, StaticMaskTiles()),
    (16384, StaticMaskTiles((128, 128), BACKWARD_64_TILES)),
)


def static_mask_tiles(n: int) -> StaticMaskTiles:
    """The :data:`STATIC_MASK_TILES` entry for sequences of ``n`` tokens."""
    chosen = StaticMaskTiles()
    for min_length, tiles in STATIC_MASK_TILES:
        if n >= min_length:
            chosen = tiles
    return chosen


def _flex_call_options(q: torch.Tensor, compiled: bool) -> dict[str, Any]:
    """``kernel_options`` of the static-mask tiles for ``q``'s length in a compiled GPU call (eager reference calls
    take none)."""
    options = static_mask_tiles(q.shape[2]).kernel_options
    if compiled and q.is_cuda and options:
        return {"kernel_options": dict(options)}
    return {}


def flex_available() -> bool:
    """Whether this torch build ships FlexAttention."""
    return flex_attention is not None


def compiled_flex_attention() -> Callable:
    """``flex_attention`` wrapped in ``torch.compile`` once per process (the fused kernel needs compilation).

    Inside a graph that is being compiled (a compiled network), plain ``flex_attention``: the graph compiles it,
    while calling the compiled wrapper from there is a graph break ("function marked as skipped")."""
    if torch.compiler.is_compiling():
        return flex_attention
    global _compiled_flex_attention
    if _compiled_flex_attention is None:
        _compiled_flex_attention = torch.compile(flex_attention)
    return _compiled_flex_attention


FIXED_GLOBAL_AT = ("first", "last")  # where fixed global tokens sit in the sequence


def fixed_global_start(n: int, num_global: int, global_at: str) -> int:
    """First position of the ``min(num_global, n)`` fixed global tokens: at the start (``first``) or end (``last``)."""
    if global_at not in FIXED_GLOBAL_AT:
        raise ValueError(f"global_at must be one of {', '.join(FIXED_GLOBAL_AT)}, got {global_at!r}")
    return 0 if global_at == "first" else n - min(num_global, n)


_block_masks: dict[tuple, "BlockMask"] = {}
_MAX_CACHED_MASKS = 32


def local_window_block_mask(
    n: int, half_window: int, causal: bool, device: torch.device, num_global: int = 0, global_at: str = "first",
    global_rows: bool = False,
) -> "BlockMask":
    """Static block mask of the sliding window over ``n`` queries and keys, plus fixed global keys (cached).

    Query ``i`` sees key ``j`` iff ``|i - j| <= half_window`` or ``j`` is one of the ``num_global`` positions
    at ``global_at`` (the first or the last ones); and ``j <= i`` if causal.  Global *queries* are in the mask
    only with ``global_rows`` (then a global query sees every key, ``j <= i`` if causal; see the module docstring).

    A plain dict rather than ``functools.lru_cache``: a compiled network traces through an lru_cache (and would
    build the mask inside its graph, a graph break), while it reads a dict entry as a constant. So a mask is
    built once, by the first call of its shape (outside any graph); after that, compiled graphs just use it.
    """
    key = (n, half_window, causal, device, num_global, global_at, global_rows, static_mask_tiles(n).block_size)
    mask = _block_masks.get(key)
    if mask is None:
        mask = _build_block_mask(*key)
        if len(_block_masks) >= _MAX_CACHED_MASKS:
            _block_masks.pop(next(iter(_block_masks)))
        _block_masks[key] = mask
    return mask


@torch.compiler.disable
def _build_block_mask(
    n: int, half_window: int, causal: bool, device: torch.device, num_global: int, global_at: str, global_rows: bool,
    block_size: tuple[int, int],
) -> "BlockMask":
    if not flex_available():
        raise RuntimeError("FlexAttention is not available in this torch build")
    start = fixed_global_start(n, num_global, global_at)
    count = min(num_global, n)

    # One comparison per global test (the run touches an end of the sequence): the kernels evaluate this element-wise
    # in every partial block, and the backward twice; the two-sided range test made the layer's backward kernel ~10 %
    # slower than FlexAttention's with the same mask (H200, 4K tokens: 3.04 against 2.76 ms).
    def is_global(idx):
        return idx < count if global_at == "first" else idx >= start

    def mask_mod(b, h, q_idx, kv_idx):
        allowed = (q_idx - kv_idx).abs() <= half_window
        if count > 0:
            allowed = allowed | is_global(kv_idx)
            if global_rows:
                allowed = allowed | is_global(q_idx)
        return allowed & (kv_idx <= q_idx) if causal else allowed

    return create_block_mask(
        mask_mod, B=None, H=None, Q_LEN=n, KV_LEN=n, device=device, BLOCK_SIZE=block_size,
        _compile=device.type == "cuda",
    )


def _key_padding_score_mod(key_mask: Optional[torch.Tensor]) -> Optional[Callable]:
    """A ``score_mod`` hiding padded keys, except a query's own (keeps rows of padded queries finite); ``None``
    without padding, so unpadded batches skip the element-wise work."""
    if key_mask is None:
        return None

    def score_mod(score, b_idx, h_idx, q_idx, kv_idx):
        return torch.where(key_mask[b_idx, kv_idx] | (kv_idx == q_idx), score, -float("inf"))

    return score_mod


def global_columns(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    half_window: int,
    causal: bool,
    key_mask: Optional[torch.Tensor],
    global_positions: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unnormalised softmax terms of the global keys for every query, O(n * g), in float32.

    Returns ``(numerator (B, H, n, d), denominator (B, H, n), row_max (B, H, n))`` with
    ``numerator = sum_j exp(s_ij - row_max) v_j`` over the global keys j a query may use: outside its
    window (inside it, the window already holds that key), not padding, and not later if causal.
    """
    n = q.shape[2]
    kg, vg = gather_positions(k, global_positions).float(), gather_positions(v, global_positions).float()
    scores = (q.float() @ kg.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, H, n, g)
    query_pos = torch.arange(n, device=q.device)[:, None]
    pos = global_positions[:, None, None, :]  # (B, 1, 1, g)
    usable = (query_pos - pos).abs() > half_window
    if causal:
        usable = usable & (pos <= query_pos)
    if key_mask is not None:
        usable = usable & key_mask.gather(1, global_positions)[:, None, None, :]
    scores = scores.masked_fill(~usable, float("-inf"))
    row_max = scores.amax(dim=-1).detach()
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    weights = torch.exp(scores - row_max[..., None])  # exactly 0 where not usable
    return weights @ vg, weights.sum(dim=-1), row_max


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
    block_mask = local_window_block_mask(n, half_window, causal, q.device)
    score_mod = _key_padding_score_mod(key_mask)
    attend = compiled_flex_attention() if compiled else flex_attention
    options = _flex_call_options(q, compiled)
    if num_global == 0:
        return attend(q, k, v, score_mod=score_mod, block_mask=block_mask, **options)

    local, lse = attend(q, k, v, score_mod=score_mod, block_mask=block_mask, return_lse=True, **options)
    numerator, denominator, row_max = global_columns(q, k, v, half_window, causal, key_mask, global_positions)
    # softmax over [window keys ; global keys] = weighted merge of the two parts' normalised outputs
    lse = lse.float()
    top = torch.maximum(lse.detach(), row_max)
    local_weight = torch.exp(lse - top)  # (window's sum of exp) / exp(top)
    global_weight = torch.exp(row_max - top)
    out = (local.float() * local_weight[..., None] + numerator * global_weight[..., None]) / (
        local_weight + denominator * global_weight
    )[..., None]
    return out.to(q.dtype)


def flex_static_global_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    half_window: int,
    num_global: int,
    global_at: str,
    causal: bool = False,
    key_mask: Optional[torch.Tensor] = None,
    compiled: bool = True,
    global_rows: bool = False,
) -> torch.Tensor:
    """Sliding window plus global keys at fixed positions, in ONE FlexAttention call with a static block mask.

    Query ``i`` sees key ``j`` iff ``|i - j| <= half_window``, or ``j`` is one of the first (``global_at="first"``)
    or last (``"last"``) ``min(num_global, n)`` positions; and ``j <= i`` if causal.  A global key inside the
    window counts once (one mask).  Padded keys are hidden except a query's own.  Same result as
    :func:`flex_local_global_attention` with those positions, without the dense global columns and the
    log-sum-exp merge.  Global *queries* are the caller's job (as there), unless ``global_rows``: then their rows
    are in the mask too (each sees every key; ``j <= i`` if causal) and the call is the whole pattern. That costs
    their 128-row block a walk over all ``n / 128`` key blocks, which a short sequence hides and a long one does not
    (:class:`~hierarchicalvlm.attention.sparse.local_global.LocalGlobalAttention` chooses).  No attention dropout.

    Args:
        q, k, v: ``(B, H, n, d)``, all of one dtype.
        num_global: number of global tokens (clipped to ``n``).
        global_at: ``"first"`` or ``"last"``.
        key_mask: ``(B, n)`` bool, True = real token.
        compiled: as in :func:`flex_local_global_attention` (``False``: eager reference, small CPU checks only).

    Returns:
        ``(B, H, n, d)``.
    """
    block_mask = local_window_block_mask(q.shape[2], half_window, causal, q.device, num_global, global_at, global_rows)
    attend = compiled_flex_attention() if compiled else flex_attention
    return attend(q, k, v, score_mod=_key_padding_score_mod(key_mask), block_mask=block_mask,
                  **_flex_call_options(q, compiled))
