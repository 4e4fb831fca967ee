"""Models: the hierarchical video-language network and its LightningModule."""

from .config import NetConfig
from .hierarchical_vlm import HierarchicalVLM
from .lit_module import HierarchicalVLMModule

__all__ = ["HierarchicalVLM", "HierarchicalVLMModule", "NetConfig"]
