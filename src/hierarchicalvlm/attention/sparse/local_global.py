"""Local + global attention (Longformer / BigBird style) with learned or fixed global tokens, in O(n * (window + g))."""

from __future__ import annotations

from typing import ClassVar, NamedTuple, Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hierarchicalvlm.utils.checks import check_positive

from ..base import SequenceMixer, split_heads
from ..ops.flex import (
    FIXED_GLOBAL_AT,
    MIN_FLEX_HEAD_DIM,
    fixed_global_start,
    flex_available,
    flex_local_global_attention,
    flex_static_global_attention,
)
from ..ops.kernel_policy import use_fused
from ..ops.local_window import gather_positions, local_window_attention
from ..ops.sdpa import sdpa

GLOBAL_TOKEN_CHOICES = ("learned", *FIXED_GLOBAL_AT)


def check_global_tokens(global_tokens: str, causal: bool) -> None:
    """Validate the ``global_tokens`` knob at construction, naming the fix."""
    if global_tokens not in GLOBAL_TOKEN_CHOICES:
        raise ValueError(
            f"global_tokens must be one of {', '.join(GLOBAL_TOKEN_CHOICES)}, got {global_tokens!r}; "
            "set attention.global_tokens to learned (top-k by a learned score), first or last (fixed positions)"
        )
    if global_tokens == "last" and causal:
        raise ValueError(
            "global_tokens=last cannot be causal: every earlier token would see the late global tokens "
            "(a look-ahead); use global_tokens=first (leading sink tokens) with causal=true"
        )


def small_query_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: Optional[torch.Tensor], dropout_p: float
) -> torch.Tensor:
    """Softmax attention of a few queries ``q (B, H, g, d)`` over all keys, as plain products.

    For the g global rows under a mask (padding, causal). SDPA's math kernel, the one that takes such a mask,
    upcasts every key and value to float32 and multiplies at N = g on CUDA cores (3 ms of a 16 ms local_global step
    at 64K on an H200). Here the products run in the inputs' dtype (tensor cores for bf16; the g x n scores are
    rounded to it once) and the softmax in float32 or wider.
    """
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p)
    return weights.to(v.dtype) @ v


class GlobalTokens(NamedTuple):
    """The choice of global tokens for one batch.

    Attributes:
        positions: ``(B, g)`` long, the chosen token positions.  ``learned``, non-causal: the highest
            learned scores first; padded tokens score ``-inf``, so they are only chosen when a sample has
            fewer than ``g`` real tokens, and then stay inert (padding is hidden as a key and zeroed as a
            query).  ``learned`` causal, and ``first``: the first ``g`` positions; ``last``: the last ``g``
            (in ascending order; a padded one stays inert as above).
        value_scale: ``(B, n)``, ``1 + (s - s.detach())`` at the chosen positions (``s`` = sigmoid score)
            and ``1`` elsewhere.  Exactly 1 in the forward pass; its gradient trains the scorer
            (straight-through), since the discrete top-k choice has none.  ``None`` when nothing is
            learned (fixed positions).
    """

    positions: torch.Tensor
    value_scale: Optional[torch.Tensor]


class LocalGlobalAttention(SequenceMixer):
    """Sliding-window attention plus a few global tokens that connect the whole sequence.

    Query ``i`` attends key ``j`` iff ``|i - j| <= window_size // 2``, or ``j`` is a global token, or
    ``i`` is a global token (global queries see every key); with ``causal=True`` only ``j <= i`` in
    all three cases.  Which tokens are global is the ``global_tokens`` knob:

    * ``learned`` (default): the ``num_global_tokens`` real tokens with the highest learned score
      (``nn.Linear(dim, 1)``).  The values of the chosen tokens are multiplied by a straight-through
      factor that equals 1 in the forward pass, so the output is exactly the dense masked attention over
      this pattern while the scorer still receives gradients.
    * ``first`` / ``last``: the first / last ``num_global_tokens`` positions, no scorer.  Fixed positions
      make the whole pattern a static block mask: on GPUs one FlexAttention call instead of the window
      kernel plus dense global columns merged by log-sum-exp (faster, see :mod:`..ops.flex`).  In the
      video model the level-2 sequence ends with the ``[VID]`` and ``[QA]`` summary tokens, so ``last``
      makes the readout tokens global.

    Any two tokens are at most two hops apart (via a global token), at O(n * (window + g)) cost.
    ``num_global_tokens=0`` gives a pure sliding window (``conf/attention/local.yaml``).

    Causal mode: a top-k over the whole sequence would let future tokens decide which past tokens
    are global (and so change past outputs), so with ``causal=True`` the global tokens are instead
    the first ``num_global_tokens`` positions (fixed leading "sink" tokens) and there is no
    scorer.  The pattern is otherwise the one above.  ``last`` cannot be causal (every earlier token
    would see a later one); ``first`` is the causal fixed choice.

    Kernels (``kernel``, see :mod:`..ops.kernel_policy`): on CUDA a fused FlexAttention kernel with a
    cached block mask (no attention dropout there, so dropout > 0 in training uses the blocked path);
    elsewhere, or with ``kernel="torch"``, a blocked sliding window in pure PyTorch.  Both compute
    the same pattern.  The global tokens' own rows are one SDPA call on the g queries (plain products where a
    padding or causal mask applies), except for fixed globals on the FlexAttention path up to
    ``global_rows_in_mask_max_len`` tokens, where they are in the mask.

    Args:
        dim: model width; ``num_heads`` must divide it.
        window_size: full width of the local window (>= 1); each side sees ``window_size // 2``.
        num_global_tokens: number of global tokens (>= 0).
        global_tokens: which tokens are global: ``learned``, ``first`` or ``last`` (see above).
        dropout: attention-weight dropout in training.
        causal: only attend to earlier positions.
        qkv_bias: bias in the q/k/v and output projections.
        kernel: ``auto`` (FlexAttention where it can run), ``torch`` (always blocked) or ``fused`` (always Flex).
    """

    supports_causal = True
    # Fixed global tokens on the FlexAttention path: up to this length their query rows are part of the one
    # static-mask kernel (exactly FlexAttention with the layer's mask); longer, that row block's walk over all
    # n/128 key blocks costs more than computing the g rows beside the kernel. On an H200 (window 512, 16 globals,
    # 131K tokens per step; docs/PERFORMANCE.md, issue 14): FlexAttention with the whole mask took 8.2 / 13.4 / 19.2 ms
    # at 4K / 16K / 64K tokens, the layer with the rows beside it (dense products then) 10.6 / 14.0 / 16.4 ms; at 64K
    # with the rows by SDPA, 8.6 ms in the mask against 8.1 beside (scripts/probes/global_rows.py).
    global_rows_in_mask_max_len: ClassVar[int] = 16384

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 64,
        num_global_tokens: int = 4,
        dropout: float = 0.0,
        causal: bool = False,
        qkv_bias: bool = True,
        kernel: str = "auto",
        global_tokens: str = "learned",
    ) -> None:
        check_positive(window_size=window_size)
        if num_global_tokens is None or num_global_tokens < 0:
            raise ValueError(f"num_global_tokens must be >= 0 (0 = window only), got {num_global_tokens!r}")
        check_global_tokens(global_tokens, causal)
        super().__init__(dim, num_heads, dropout, causal, kernel)
        self.window_size = int(window_size)
        self.half_window = self.window_size // 2
        self.num_global_tokens = int(num_global_tokens)
        self.global_tokens = global_tokens
        # causal "learned" keeps the leading tokens: see the class docstring
        self.global_at = global_tokens if global_tokens != "learned" else ("first" if causal else None)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=qkv_bias)
        learned = self.num_global_tokens > 0 and self.global_at is None
        self.global_scorer = nn.Linear(dim, 1) if learned else None

    def select_global_tokens(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> Optional[GlobalTokens]:
        """The ``min(num_global_tokens, n)`` global tokens: highest-scoring real ones, or the fixed first/last ones.

        Returns ``None`` when ``num_global_tokens == 0``.
        """
        if self.num_global_tokens == 0:
            return None
        b, n = x.shape[:2]
        count = min(self.num_global_tokens, n)
        if self.global_at is not None:  # fixed positions (causal: leading tokens, chosen without looking ahead)
            start = fixed_global_start(n, count, self.global_at)
            positions = torch.arange(start, start + count, device=x.device).expand(b, count).contiguous()
            return GlobalTokens(positions, None)
        score = self.global_scorer(x).squeeze(-1)  # (B, n)
        ranking = score.detach() if mask is None else score.detach().masked_fill(~mask, float("-inf"))
        positions = ranking.topk(count, dim=1).indices
        gate = torch.sigmoid(score.gather(1, positions))
        value_scale = torch.ones_like(score).scatter(1, positions, 1.0 + (gate - gate.detach()))
        return GlobalTokens(positions, value_scale)

    def backend_for(self, x: torch.Tensor) -> str:
        """``"flex"`` (fused GPU kernel) or ``"blocked"`` (pure PyTorch), the path :meth:`mix` takes for ``x``.

        With ``global_tokens`` ``first``/``last``, ``"flex"`` is the single static-mask kernel.
        """
        unavailable = None
        if not x.is_cuda:
            unavailable = "FlexAttention runs on CUDA tensors only"
        elif not flex_available():
            unavailable = "this torch build has no FlexAttention"
        elif self.training and self.dropout > 0:
            unavailable = "FlexAttention has no attention dropout (set dropout: 0.0)"
        elif self.head_dim < MIN_FLEX_HEAD_DIM:
            unavailable = f"head_dim {self.head_dim} < {MIN_FLEX_HEAD_DIM}, the smallest FlexAttention takes"
        return "flex" if use_fused(self.kernel, "flex", unavailable) else "blocked"

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        q, k, v = split_heads(self.qkv(x), self.num_heads)
        dropout_p = self.dropout if self.training else 0.0
        backend = self.backend_for(x)
        count = min(self.num_global_tokens, x.shape[1])
        static = backend == "flex" and self.global_at is not None  # fixed global keys: a static FlexAttention mask
        if static and count > 0 and x.shape[1] <= self.global_rows_in_mask_max_len:  # the global rows in it too
            out = flex_static_global_attention(
                q, k, v, self.half_window, count, self.global_at, self.causal, mask, global_rows=True)
            return self.proj(rearrange(out, "b h n d -> b n (h d)"))

        chosen = self.select_global_tokens(x, mask)
        positions = None
        if chosen is not None:
            positions = chosen.positions
            if chosen.value_scale is not None:
                v = v * chosen.value_scale[:, None, :, None].to(v.dtype)
        if static:  # the global rows beside the kernel (below)
            out = flex_static_global_attention(q, k, v, self.half_window, count, self.global_at, self.causal, mask)
        elif backend == "flex":
            out = flex_local_global_attention(q, k, v, self.half_window, self.causal, mask, positions)
        else:
            out = local_window_attention(q, k, v, self.half_window, self.causal, mask, positions, dropout_p)
        out = rearrange(out, "b h n d -> b n (h d)")
        if positions is not None:
            global_out = rearrange(self._global_queries(q, k, v, positions, mask, dropout_p), "b h g d -> b g (h d)")
            out = self._write_global_rows(out, global_out, positions)
        return self.proj(out)

    def _write_global_rows(self, out: torch.Tensor, global_out: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``out (B, n, D)`` with the global tokens' rows replaced by ``global_out`` (``(B, g, D)``, ``positions``
        order).  In the token-major layout each row is one contiguous run (fast to copy; the kernels' head-major
        output need not be contiguous).  Fixed ``first``/``last`` positions: a slice and a cat, no scatter."""
        if self.global_at is None:
            return out.scatter(1, positions[:, :, None].expand_as(global_out), global_out)
        count = global_out.shape[1]
        if self.global_at == "first":
            return torch.cat([global_out, out[:, count:]], dim=1)
        return torch.cat([out[:, : out.shape[1] - count], global_out], dim=1)

    def _global_queries(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        positions: torch.Tensor,
        mask: Optional[torch.Tensor],
        dropout_p: float,
    ) -> torch.Tensor:
        """The global tokens' own rows: each attends every (real, and earlier if causal) key, O(g * n).

        Unmasked (no padding, not causal): one fused SDPA call on the g rows (no g x n scores in memory, and no
        copy of the token-major keys and values). Otherwise plain products under the mask
        (:func:`small_query_attention`)."""
        if self.global_at is not None:  # fixed positions: a slice of the queries, no gather
            start = fixed_global_start(q.shape[2], positions.shape[1], self.global_at)
            global_q = q[:, :, start : start + positions.shape[1]]
        else:
            global_q = gather_positions(q, positions)
        if mask is None and not self.causal:
            return sdpa(global_q, k, v, dropout_p=dropout_p)
        key_pos = torch.arange(k.shape[2], device=k.device)
        query_pos = positions[:, :, None]  # (B, g, 1)
        allowed = key_pos <= query_pos if self.causal else torch.ones_like(key_pos, dtype=torch.bool)
        if mask is not None:
            allowed = allowed & mask[:, None, :]
        # A (padded) global query always sees itself, so its row stays finite.
        attn_mask = (allowed | (key_pos == query_pos))[:, None]  # (B, 1, g, n)
        return small_query_attention(global_q, k, v, attn_mask, dropout_p)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, window_size={self.window_size}, num_global_tokens={self.num_global_tokens}, "
            f"global_tokens={self.global_tokens}"
        )
