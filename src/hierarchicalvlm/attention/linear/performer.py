"""Performer attention: softmax attention approximated by FAVOR+ random features in linear time."""

from __future__ import annotations

from typing import Optional

import torch
from einops import rearrange
from torch import nn

from hierarchicalvlm.utils.checks import check_positive

from ..base import SequenceMixer
from ..ops.favor import favor_attention, orthogonal_gaussian_projection
from ..ops.favor_triton import fused_favor_attention_packed, fused_favor_slower, fused_favor_unavailable
from ..ops.kernel_policy import use_fused


class PerformerAttention(SequenceMixer):
    """Multi-head attention whose softmax kernel is estimated by positive orthogonal random features.

    Cost O(n · num_features · head_dim) in time and memory instead of O(n²): no n×n matrix is formed.
    The approximation error of the attention weights shrinks like ``1/√num_features``.

    Args:
        dim, num_heads, dropout, causal: as for every :class:`SequenceMixer`.  Dropout acts on the attention
            output before the output projection (there are no attention probabilities to drop).
        num_features: number of random features m per head (shared by all heads).
        feature_redraw_interval: draw a new projection every this many training-mode forward calls
            (resampling keeps the model from overfitting to one draw); ``0``/``None`` keeps the first draw.
        chunk_size: chunk length of the causal computation (a c×c product inside each chunk, running
            state across chunks); unused when ``causal=False``.
        qkv_bias: whether the query/key/value projection has a bias.
        kernel: ``auto`` (the fused Triton kernel where it can run), ``torch`` or ``fused``
            (:mod:`..ops.kernel_policy`; ``HVLM_FAVOR_KERNEL`` overrides it).

    Masking: padded keys get zero features, so they receive no weight; padded outputs are zeroed.
    Precision: features and the attention core run in float32 with autocast off, whatever the input dtype;
    the result is cast back to the dtype of the value projection.
    GPU path: non-causal bf16/fp16 layers on CUDA run the fused Triton kernel of :mod:`..ops.favor_triton`
    (features recomputed in registers, never written to memory); fp32 ones only with ``kernel: fused`` (slower
    than the PyTorch path there); ``kernel: torch`` keeps the PyTorch path.
    The projection ω is a persistent buffer (saved in checkpoints; synchronised by DDP's buffer broadcast), drawn
    rounded to bfloat16 values (:meth:`draw_projection`).
    """

    supports_causal = True

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_features: int = 256,
        dropout: float = 0.0,
        causal: bool = False,
        feature_redraw_interval: Optional[int] = 1000,
        chunk_size: int = 64,
        qkv_bias: bool = True,
        kernel: str = "auto",
    ) -> None:
        super().__init__(dim, num_heads, dropout, causal, kernel)
        check_positive(num_features=num_features, chunk_size=chunk_size)
        if feature_redraw_interval is not None and feature_redraw_interval < 0:
            raise ValueError(
                f"feature_redraw_interval must be >= 0 (0 or None = never redraw), got {feature_redraw_interval!r}"
            )
        self.num_features = int(num_features)
        self.chunk_size = int(chunk_size)
        self.feature_redraw_interval = feature_redraw_interval or 0
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("projection", self.draw_projection())
        self.calls_since_redraw = 0

    def draw_projection(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A fresh ω, rounded to bfloat16 values (stored in float32): the fused kernel multiplies bf16 inputs with a
        bf16 ω on tensor cores, and with ω drawn so, that path and the float32 PyTorch path use the same ω."""
        return orthogonal_gaussian_projection(self.num_features, self.head_dim, generator=generator).bfloat16().float()

    @torch.no_grad()
    def redraw_features(self, generator: Optional[torch.Generator] = None) -> None:
        """Replace the random projection by a fresh draw (from ``generator`` or the global RNG)."""
        self.projection.copy_(self.draw_projection(generator))
        self.calls_since_redraw = 0

    def step_feature_redraw(self) -> None:
        """Count one training call and redraw the features every ``feature_redraw_interval`` calls.

        Eager code only: the forward calls it itself, except inside ``torch.compile``, where a Python counter
        would break the graph (or recompile it every step); there the training loop calls it before each
        step (:func:`step_feature_redraws`).
        """
        if not (self.training and self.feature_redraw_interval):
            return
        if self.calls_since_redraw >= self.feature_redraw_interval:
            self.redraw_features()
        self.calls_since_redraw += 1

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            self.step_feature_redraw()
        qkv = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        q, k, v = qkv
        unavailable = "causal layers have no fused kernel" if self.causal else fused_favor_unavailable(q)
        if use_fused(self.kernel, "favor", unavailable, fused_favor_slower(q)):
            out = fused_favor_attention_packed(qkv, self.projection, mask)  # q, k, v stay views of the projection
        else:
            out = favor_attention(q, k, v, self.projection, mask, causal=self.causal, chunk_size=self.chunk_size)
        out = self.attn_drop(out.to(v.dtype))
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, num_features={self.num_features}, "
            f"feature_redraw_interval={self.feature_redraw_interval}, chunk_size={self.chunk_size}"
        )


def step_feature_redraws(model: nn.Module) -> None:
    """Advance the redraw schedule of every Performer layer in ``model`` (for compiled models, once per step)."""
    for module in model.modules():
        if isinstance(module, PerformerAttention):
            module.step_feature_redraw()
