"""Visual encoder choices (``conf/model/visual/<name>.yaml``): how frames become the tokens of the hierarchy.

* ``kind: patch``: patches embedded from scratch (:class:`~hierarchicalvlm.models.video_encoder.PixelAdapter`);
* ``kind: hf``: a pretrained image encoder from ``transformers`` (CLIP, SigLIP, DINOv2…) run on every frame,
  frozen or fine-tuned (:class:`PretrainedFrameAdapter`).

With ``data=features`` the frames were already encoded (``scripts/extract_features.py --extractor clip``…), and
the features adapter is used whatever the choice, except a pretrained one, which would have nothing to run on.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .backbones import Backbone


class PretrainedFrameAdapter(nn.Module):
    """Frames ``(B, T, C, H, W)`` in ``[0, 1]`` -> ``(B, T, P, D)`` tokens through a pretrained image encoder.

    Each frame is resized to ``image_size``, normalised with the backbone's ``mean``/``std`` and encoded; the frame
    gives ``grid``x``grid`` tokens (its patch tokens average-pooled to that grid, plus a learned position each), or
    with ``grid: 0`` one token (the backbone's pooled output: CLIP/DINOv2 class token, SigLIP attention pool).
    A linear layer maps the backbone's width to the model's ``dim``. Frames go through in chunks of ``chunk``.
    """

    def __init__(self, spec: Mapping[str, Any], dim: int, where: str = "model.visual") -> None:
        super().__init__()
        self.backbone = Backbone(spec, where)
        config = self.backbone.config
        self.image_size = int(spec.get("image_size") or config.image_size)
        self.patch_size = int(config.patch_size)
        if self.image_size % self.patch_size:
            raise ValueError(f"{where}.image_size={self.image_size} must be a multiple of the backbone's patch size "
                             f"{self.patch_size}")
        self.grid = int(spec.get("grid", 0))
        side = self.image_size // self.patch_size
        if not 0 <= self.grid <= side:
            raise ValueError(f"{where}.grid={self.grid} must be in [0, {side}] (0: one pooled token per frame; "
                             f"g: g x g pooled patch tokens of the {side} x {side} patch grid)")
        self.chunk = int(spec.get("chunk", 256))
        # at another size than it was trained at, the backbone interpolates its position embeddings (DINOv2 always)
        resized = self.image_size != int(config.image_size)
        takes_flag = "interpolate_pos_encoding" in inspect.signature(self.backbone.model.forward).parameters
        self.backbone_kwargs = {"interpolate_pos_encoding": True} if resized and takes_flag else {}
        self.register_buffer("mean", torch.tensor(list(spec.get("mean", (0.5, 0.5, 0.5))), dtype=torch.float32)
                             .view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(spec.get("std", (0.5, 0.5, 0.5))), dtype=torch.float32)
                             .view(1, -1, 1, 1), persistent=False)
        self.tokens_per_frame = max(1, self.grid**2)
        self.proj = nn.Linear(int(config.hidden_size), dim)
        self.patch_pos = nn.Parameter(torch.zeros(self.tokens_per_frame, dim)) if self.grid else None
        if self.patch_pos is not None:
            nn.init.trunc_normal_(self.patch_pos, std=0.02)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) normalised images -> (N, P, hidden) tokens."""
        out = self.backbone(pixel_values=images, **self.backbone_kwargs)
        if not self.grid:
            return out.pooler_output.unsqueeze(1)
        side = self.image_size // self.patch_size
        patches = out.last_hidden_state[:, -side * side:]  # CLIP/DINOv2 put a class token (and registers) first
        patches = rearrange(patches, "n (h w) c -> n c h w", h=side)
        return rearrange(F.adaptive_avg_pool2d(patches, self.grid), "n c h w -> n (h w) c")

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b = frames.shape[0]
        images = rearrange(frames, "b t c h w -> (b t) c h w").float()
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        images = (images - self.mean) / self.std
        dtype = next(self.backbone.parameters()).dtype
        tokens = torch.cat([self._encode(part.to(dtype)) for part in images.split(self.chunk)])
        tokens = self.proj(tokens.to(self.proj.weight.dtype))
        if self.patch_pos is not None:
            tokens = tokens + self.patch_pos
        return rearrange(tokens, "(b t) p d -> b t p d", b=b)


def build_visual_adapter(visual: Optional[Mapping[str, Any]], inputs: Mapping[str, Any], dim: int) -> Optional[nn.Module]:
    """The adapter of a pretrained visual choice, or None where the built-in adapters apply (``kind: patch``, or
    precomputed features with the default choice)."""
    kind = (visual or {}).get("kind", "patch")
    if kind == "patch":
        return None
    if kind != "hf":
        raise ValueError(f"model.visual.kind={kind!r} is unknown; use patch or hf (conf/model/visual/*.yaml)")
    if inputs["kind"] != "pixels":
        raise ValueError(
            f"model.visual ({visual.get('model_class')} {visual.get('name')}) encodes pixels, but the data gives {inputs['kind']} "
            "(data=features): the features were encoded already, so keep model/visual=patch with data=features "
            "(extract them with scripts/extract_features.py features --extractor clip|siglip|dinov2)"
        )
    return PretrainedFrameAdapter(visual, dim)
