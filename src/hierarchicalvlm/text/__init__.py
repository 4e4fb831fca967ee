"""Text side: tokenizers built from the data, nothing downloaded."""

from .tokenizer import WordTokenizer

__all__ = ["WordTokenizer"]
