"""The video side: frames -> patch tokens -> level 1 (within a frame) -> level 2 (the whole video) -> memory level.

Level 2 is where the sequence is long (``num_frames x tokens_per_frame``) and where the configured
attention mechanism does its work; everything else uses plain full attention over short sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from einops import rearrange, repeat
from torch import nn
from torch.utils.checkpoint import checkpoint

from hierarchicalvlm.attention import AttentionBlock, CrossMemoryAttention, FullAttention, SequenceMixer

from .config import NetConfig
from .visual_backbone import build_visual_adapter

AttentionFactory = Callable[..., SequenceMixer]


@dataclass
class EncodedVideo:
    """Output of the video encoder.

    tokens: (B, N, D) long-level tokens after the memory level; mask: (B, N) True on real tokens;
    video: (B, D) question-free summary (for contrastive learning); qa: (B, D) question-conditioned summary.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    video: torch.Tensor
    qa: torch.Tensor


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the token axis (the one before features) of the tokens ``mask`` keeps; zeros where it keeps none."""
    weights = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(-2) / weights.sum(-2).clamp_min(1.0)


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sin/cos embedding of integer positions: works for any video length, no table to outgrow."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None] * freqs
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return nn.functional.pad(emb, (0, dim - 2 * half))


class PixelAdapter(nn.Module):
    """Cut each (C, H, W) frame into non-overlapping patches and embed them: (B, T, C, H, W) -> (B, T, P, D)."""

    def __init__(self, frame_shape: tuple[int, int, int], patch_size: int, dim: int) -> None:
        super().__init__()
        channels, height, width = frame_shape
        if height % patch_size or width % patch_size:
            raise ValueError(
                f"model.net.patch_size ({patch_size}) must divide the frame size {height}x{width}; "
                f"pick a divisor of {math.gcd(height, width)}"
            )
        self.tokens_per_frame = (height // patch_size) * (width // patch_size)
        self.embed = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)
        self.patch_pos = nn.Parameter(torch.zeros(self.tokens_per_frame, dim))
        nn.init.trunc_normal_(self.patch_pos, std=0.02)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b = frames.shape[0]
        patches = self.embed(rearrange(frames, "b t c h w -> (b t) c h w"))
        return rearrange(patches, "(b t) d h w -> b t (h w) d", b=b) + self.patch_pos


class FeatureAdapter(nn.Module):
    """Project precomputed per-frame features to one token per frame: (B, T, F) -> (B, T, 1, D)."""

    tokens_per_frame = 1

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features).unsqueeze(2)


def make_input_adapter(inputs: dict[str, Any], patch_size: int, dim: int, visual: Optional[dict[str, Any]] = None
                       ) -> nn.Module:
    pretrained = build_visual_adapter(visual, inputs, dim)  # conf/model/visual: a pretrained image encoder
    if pretrained is not None:
        return pretrained
    if inputs["kind"] == "pixels":
        return PixelAdapter(tuple(inputs["frame_shape"]), patch_size, dim)
    if inputs["kind"] == "features":
        return FeatureAdapter(int(inputs["feature_dim"]), dim)
    raise ValueError(f"unknown input kind {inputs['kind']!r}; the data module must report 'pixels' or 'features'")


class HierarchicalVideoEncoder(nn.Module):
    """Frames -> clips -> video.

    Two summary tokens are appended after the frame tokens of level 2: ``[VID]`` (reads the video for
    contrastive learning) and ``[QA]`` (starts from the question and reads the video for the answer).
    They see the video only through the configured attention, so the mechanism's reach decides what
    they can learn.
    """

    def __init__(
        self,
        inputs: dict[str, Any],
        attention: AttentionFactory,
        config: NetConfig,
        visual: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        dim, num_heads, mlp_ratio, dropout = config.dim, config.num_heads, config.mlp_ratio, config.dropout
        self.dim = dim
        self.clip_frames = config.clip_frames
        self.video_summary = config.video_summary
        self.activation_checkpointing = config.activation_checkpointing
        self.adapter = make_input_adapter(inputs, config.patch_size, dim, visual)
        self.tokens_per_frame = self.adapter.tokens_per_frame
        # Normalised patch tokens plus a small learnable share of the time signal: raw pixels of tiny objects
        # embed to small vectors, and an unscaled sin/cos (norm ~sqrt(dim/2)) would drown them.
        self.embed_norm = nn.LayerNorm(dim)
        self.time_scale = nn.Parameter(torch.tensor([float(config.time_scale)]))  # (1,): FSDP cannot shard 0-d parameters
        self.level1 = nn.ModuleList(
            AttentionBlock(FullAttention(dim, num_heads, dropout), mlp_ratio, dropout)
            for _ in range(config.level1_depth)
        )
        self.level2 = nn.ModuleList(
            AttentionBlock(attention(dim=dim, num_heads=num_heads), mlp_ratio, dropout)
            for _ in range(config.level2_depth)
        )
        self.memory = CrossMemoryAttention(dim, num_heads, dropout) if config.memory_enabled else None
        self.summary_tokens = nn.Parameter(torch.zeros(2, dim))
        self.question_in = nn.Linear(dim, dim)
        # model.net.question_tokens: the question's word tokens enter level 2 after the video
        self.words_in = nn.Linear(dim, dim) if config.question_tokens else None
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, frames: torch.Tensor, frame_mask: torch.Tensor, question: torch.Tensor, padded: Optional[bool] = None,
        words: Optional[torch.Tensor] = None, word_mask: Optional[torch.Tensor] = None,
    ) -> EncodedVideo:
        """Encode a batch of videos; ``padded`` says whether ``frame_mask`` hides any frame (None: look).

        ``words`` (B, L, D) with ``word_mask`` (B, L): the question's token states (``model.net.question_tokens``),
        placed after the video's tokens and before the summaries, so that they read the video and it reads them
        through the configured attention (a mask is then always passed: questions differ in length).

        Without padding the long-range mixers get no mask: fused kernels run unmasked (faster; and only unmasked
        SDPA calls may use cuDNN, see attention/ops/sdpa.py). Looking costs a host sync, which a compiled graph
        cannot make: there, unless the caller passes ``padded`` (the training loop does, computed outside the
        graph; the graph then specialises on it, at most two graphs per length), the mask is always kept.
        """
        x = self.embed_norm(self.adapter(frames))  # (B, T, P, D)
        b, t, p, d = x.shape
        time = sinusoidal_embedding(torch.arange(t, device=x.device), d)[None, :, None, :]
        x = x + (self.time_scale * time).to(x.dtype)

        # Level 1: each frame on its own (short sequences, full attention).
        x = rearrange(x, "b t p d -> (b t) p d")
        for block in self.level1:
            x = block(x)

        # Level 2: every token of the video in one long sequence, (the question's words,) the two summary tokens.
        x = rearrange(x, "(b t) p d -> b (t p) d", b=b)
        mask = repeat(frame_mask, "b t -> b (t p)", p=p)
        num_video = x.shape[1]
        # expand, not einops: einops registers a backend per tensor type on first use, and a Parameter's first use
        # inside a compiled forward changed a guarded registry, so every compiled model recompiled at its 2nd step
        summaries = self.summary_tokens.expand(b, -1, -1).clone()
        summaries[:, 1] = summaries[:, 1] + self.question_in(question)
        parts, masks = [x], [mask]
        if words is not None:
            if self.words_in is None:
                raise ValueError("question word tokens were given but model.net.question_tokens is false")
            parts.append(self.words_in(words).to(x.dtype))
            masks.append(word_mask.bool())
            padded = True
        x = torch.cat([*parts, summaries.to(x.dtype)], dim=1)
        mask = torch.cat([*masks, mask.new_ones(b, 2)], dim=1)
        if padded is None:
            padded = torch.compiler.is_compiling() or not bool(frame_mask.all())
        level_mask = mask if padded else None
        for block in self.level2:
            if self.activation_checkpointing and self.training:
                x = checkpoint(block, x, level_mask, use_reentrant=False)
            else:
                x = block(x, level_mask)

        # Memory level: every token reads a bank of clip summaries (mean of each clip's tokens).
        if self.memory is not None:
            memory, memory_mask = self.clip_summaries(x[:, :num_video], mask[:, :num_video], t, p)
            x = self.memory(x, memory, local_mask=level_mask, memory_mask=memory_mask if padded else None)
        x = self.norm(x)
        tokens, token_mask = x[:, :num_video], mask[:, :num_video]
        video = masked_mean(tokens, token_mask) if self.video_summary == "mean" else x[:, -2]
        return EncodedVideo(tokens=tokens, mask=token_mask, video=video, qa=x[:, -1])

    def clip_summaries(
        self, tokens: torch.Tensor, mask: torch.Tensor, frames: int, per_frame: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the real tokens of each clip of ``clip_frames`` frames: (B, num_clips, D) and its mask."""
        clip = min(self.clip_frames, frames)
        pad = (-frames) % clip
        tokens = nn.functional.pad(tokens, (0, 0, 0, pad * per_frame))
        mask = nn.functional.pad(mask, (0, pad * per_frame))
        tokens = rearrange(tokens, "b (c n) d -> b c n d", n=clip * per_frame)
        mask = rearrange(mask, "b (c n) -> b c n", n=clip * per_frame)
        return masked_mean(tokens, mask), mask.any(-1)
