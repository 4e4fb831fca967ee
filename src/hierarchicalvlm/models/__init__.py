"""Models: the hierarchical video-language network and its LightningModule."""

from .hierarchical_vlm import HierarchicalVLM
from .lit_module import HierarchicalVLMModule

__all__ = ["HierarchicalVLM", "HierarchicalVLMModule"]
