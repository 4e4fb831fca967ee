"""HierarchicalVLM: which attention lets a video-language model see further, faster."""

__version__ = "0.1.0"
