"""Data choices (one per ``conf/data/*.yaml``) and the contract they share (``base``)."""

from .base import IGNORE_INDEX, VideoTextDataModule

__all__ = ["IGNORE_INDEX", "VideoTextDataModule"]
