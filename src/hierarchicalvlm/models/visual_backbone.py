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


class PretrainedImageEncoder(nn.Module):
    """Images ``(N, C, H, W)`` in ``[0, 1]`` -> ``(N, P, hidden)`` tokens of a pretrained image encoder.

    Each image is resized to ``image_size`` (null: the backbone's own), normalised with the backbone's
    ``mean``/``std`` and encoded; it gives ``grid``x``grid`` tokens (its patch tokens average-pooled to that grid),
    or with ``grid: 0`` one token (the backbone's pooled output: CLIP/DINOv2 class token, SigLIP attention pool).
    Images go through in chunks of ``chunk``.
    """

    def __init__(self, spec: Mapping[str, Any], where: str = "model.visual") -> None:
        super().__init__()
        self.backbone = Backbone(spec, where)
        config = self.backbone.config
        self.hidden_size = int(config.hidden_size)
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
        self.tokens_per_image = max(1, self.grid**2)
        self.chunk = int(spec.get("chunk", 256))
        # at another size than it was trained at, the backbone interpolates its position embeddings (DINOv2 always)
        resized = self.image_size != int(config.image_size)
        takes_flag = "interpolate_pos_encoding" in inspect.signature(self.backbone.model.forward).parameters
        self.backbone_kwargs = {"interpolate_pos_encoding": True} if resized and takes_flag else {}
        for field in ("mean", "std"):
            values = torch.tensor(list(spec.get(field, (0.5, 0.5, 0.5))), dtype=torch.float32).view(1, -1, 1, 1)
            self.register_buffer(field, values, persistent=False)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        out = self.backbone(pixel_values=images, **self.backbone_kwargs)
        if not self.grid:
            return out.pooler_output.unsqueeze(1)
        side = self.image_size // self.patch_size
        patches = out.last_hidden_state[:, -side * side:]  # CLIP/DINOv2 put a class token (and registers) first
        patches = rearrange(patches, "n (h w) c -> n c h w", h=side)
        return rearrange(F.adaptive_avg_pool2d(patches, self.grid), "n c h w -> n (h w) c")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images.float()
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        images = (images - self.mean) / self.std
        dtype = next(self.backbone.parameters()).dtype
        return torch.cat([self._encode(part.to(dtype)) for part in images.split(self.chunk)])


class PretrainedFrameAdapter(nn.Module):
    """Frames ``(B, T, C, H, W)`` -> ``(B, T, P, D)``: a :class:`PretrainedImageEncoder` on every frame, a linear
    map of its width to the model's ``dim`` and, with a grid, a learned position per token."""

    def __init__(self, spec: Mapping[str, Any], dim: int, where: str = "model.visual") -> None:
        super().__init__()
        self.encoder = PretrainedImageEncoder(spec, where)
        self.tokens_per_frame = self.encoder.tokens_per_image
        self.proj = nn.Linear(self.encoder.hidden_size, dim)
        self.patch_pos = nn.Parameter(torch.zeros(self.tokens_per_frame, dim)) if self.encoder.grid else None
        if self.patch_pos is not None:
            nn.init.trunc_normal_(self.patch_pos, std=0.02)

    @property
    def backbone(self) -> Backbone:
        return self.encoder.backbone

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b = frames.shape[0]
        tokens = self.encoder(rearrange(frames, "b t c h w -> (b t) c h w"))
        tokens = self.proj(tokens.to(self.proj.weight.dtype))
        if self.patch_pos is not None:
            tokens = tokens + self.patch_pos
        return rearrange(tokens, "(b t) p d -> b t p d", b=b)


class FrameFeatureExtractor(nn.Module):
    """Frames ``(T, C, H, W)`` in ``[0, 1]`` -> features ``(T, hidden)``: the frozen backbone's pooled token per
    frame (``scripts/extract_features.py --extractor clip|siglip|dinov2``, for ``data=features``)."""

    def __init__(self, spec: Mapping[str, Any], where: str = "model.visual") -> None:
        super().__init__()
        self.encoder = PretrainedImageEncoder({**spec, "freeze": True, "grid": 0}, where)
        self.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(frames).squeeze(1).float()


def build_visual_adapter(visual: Optional[Mapping[str, Any]], inputs: Mapping[str, Any], dim: int
                         ) -> Optional[nn.Module]:
    """The adapter of a pretrained visual choice, or None where the built-in adapters apply (``kind: patch``, or
    precomputed features with the default choice)."""
    kind = (visual or {}).get("kind", "patch")
    if kind == "patch":
        return None
    if kind != "hf":
        raise ValueError(f"model.visual.kind={kind!r} is unknown; use patch or hf (conf/model/visual/*.yaml)")
    if inputs["kind"] != "pixels":
        raise ValueError(
            f"model.visual ({visual.get('model_class')} {visual.get('name')}) encodes pixels, but the data gives "
            f"{inputs['kind']} (data=features): the features were encoded already, so keep model/visual=patch with "
            "data=features "
            "(extract them with scripts/extract_features.py features --extractor clip|siglip|dinov2)"
        )
    return PretrainedFrameAdapter(visual, dim)
