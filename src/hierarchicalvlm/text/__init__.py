"""Text side: the from-scratch word tokenizer (trained on the data) and pretrained encoders' tokenizers."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from .pretrained import PretrainedTokenizer
from .tokenizer import WordTokenizer

TextTokenizer = Union[WordTokenizer, PretrainedTokenizer]
TokenizerFactory = Callable[[Iterable[str]], TextTokenizer]


def tokenizer_factory(text: Optional[Mapping[str, Any]]) -> TokenizerFactory:
    """How the data module builds its tokenizer for the text choice ``model.text`` (``conf/model/text/*.yaml``).

    ``tokenizer: null`` (the ``scratch`` choice, and configs without ``model.text``): a word vocabulary trained on
    the data's texts; otherwise the named pretrained tokenizer (a Hub id or a local folder).
    """
    name = (text or {}).get("tokenizer")
    if not name:
        return WordTokenizer.build
    return partial(PretrainedTokenizer.for_texts, name=str(name))


def tokenizer_from_state(state: Mapping[str, Any]) -> TextTokenizer:
    """Rebuild a tokenizer from a checkpoint's data-module state (``{"vocab": [...]}`` or ``{"tokenizer": {...}}``)."""
    saved = state.get("tokenizer") or {"kind": "word", "vocab": state.get("vocab")}
    if saved["kind"] == "pretrained":
        return PretrainedTokenizer(saved["name"])
    if saved["kind"] == "word" and saved.get("vocab"):
        return WordTokenizer(saved["vocab"])
    raise ValueError(f"checkpoint holds an unknown tokenizer state {saved!r}")


__all__ = ["PretrainedTokenizer", "TextTokenizer", "TokenizerFactory", "WordTokenizer", "tokenizer_factory",
           "tokenizer_from_state"]
