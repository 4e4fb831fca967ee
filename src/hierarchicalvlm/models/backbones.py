"""Pretrained backbones from Hugging Face ``transformers``: load by name (or build a random one), freeze or fine-tune.

Shared by the visual (``conf/model/visual``) and text (``conf/model/text``) choices. A backbone config names:

* ``model_class``: the ``transformers`` class, e.g. ``CLIPVisionModel``, ``SiglipVisionModel``, ``Dinov2Model``,
  ``BertModel``, ``CLIPTextModel``;
* ``name``: a Hub id (weights download on first use into the Hugging Face cache) or a local folder;
* ``pretrained``: false builds the architecture of ``name`` with random weights;
* ``config``: a dict of config fields; when set, a random backbone of exactly that config is built and nothing is
  read from ``name`` (what the tests do: tiny backbones, no downloads);
* ``freeze``: true keeps the weights fixed (eval mode, no gradients: cheap, like cached features); false fine-tunes
  them at ``lr_scale`` times the model's learning rate.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

def _transformers():
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("pretrained backbones need transformers: pip install 'hierarchicalvlm[pretrained]'") from err
    return transformers


def plain(spec: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """A choice's config as plain Python containers (Hydra hands over DictConfigs)."""
    if isinstance(spec, DictConfig):
        return OmegaConf.to_container(spec, resolve=True)  # type: ignore[return-value]
    return dict(spec or {})


def load_backbone(spec: Mapping[str, Any], where: str) -> nn.Module:
    """The ``transformers`` model that ``spec`` describes (``where``: its config path, for error messages)."""
    transformers = _transformers()
    spec = plain(spec)
    class_name = spec.get("model_class")
    model_class = getattr(transformers, str(class_name), None) if class_name else None
    if model_class is None or not hasattr(model_class, "config_class"):
        raise ValueError(f"{where}.model_class={class_name!r} is not a transformers model class "
                         "(e.g. CLIPVisionModel, SiglipVisionModel, Dinov2Model, BertModel, CLIPTextModel)")
    config: Optional[Mapping[str, Any]] = spec.get("config")
    if config:
        return model_class(model_class.config_class(**dict(config)))
    name = spec.get("name")
    if not name:
        raise ValueError(f"{where}.name is empty: give a Hugging Face Hub id or a local folder (or {where}.config)")
    try:
        if spec.get("pretrained", True):
            return model_class.from_pretrained(str(name))
        return model_class(model_class.config_class.from_pretrained(str(name)))
    except OSError as err:
        raise ValueError(f"cannot load {where}.name={name!r}: {err}") from err


class Backbone(nn.Module):
    """A loaded backbone, frozen (kept in eval mode, run without gradients) or fine-tuned.

    ``lr_scale`` multiplies the learning rate of its parameters when fine-tuned (the optimizer reads it).
    """

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__()
        self.model = load_backbone(spec, where)
        self.frozen = bool(spec.get("freeze", True))
        self.lr_scale = float(spec.get("lr_scale", 0.1))
        if self.frozen:
            self.model.requires_grad_(False)
            self.model.eval()

    @property
    def config(self) -> Any:
        return self.model.config

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if self.frozen:
            self.model.eval()  # no dropout in a frozen backbone, whatever the trainer asks
        return self

    def forward(self, **inputs: torch.Tensor) -> Any:
        if self.frozen:
            with torch.no_grad():
                return self.model(**inputs)
        return self.model(**inputs)
