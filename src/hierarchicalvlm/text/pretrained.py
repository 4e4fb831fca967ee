"""The tokenizer of a pretrained text encoder (CLIP's BPE, BERT's WordPiece…), through ``transformers``.

It offers the same calls as :class:`~hierarchicalvlm.text.WordTokenizer` (``batch_encode``, ``decode``,
``vocab_size``, ``save``, ``state``), so the data modules tokenize for a pretrained encoder unchanged. ``name`` is a
Hugging Face Hub id (downloaded on first use, then cached) or a local folder written by ``save_pretrained``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import torch


def _transformers():
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "pretrained text encoders need transformers: pip install 'hierarchicalvlm[pretrained]'"
        ) from err
    return transformers


class PretrainedTokenizer:
    """A ``transformers`` fast tokenizer behind the project's tokenizer calls."""

    def __init__(self, name: str) -> None:
        self.name = str(name)
        try:
            self.backend = _transformers().AutoTokenizer.from_pretrained(self.name)
        except OSError as err:
            raise ValueError(
                f"cannot load the tokenizer {self.name!r} (model.text.tokenizer): {err}. Give a Hugging Face Hub id "
                "(needs the network once) or a folder holding tokenizer.json / tokenizer_config.json"
            ) from err
        if self.backend.pad_token is None:  # e.g. GPT-style BPE: pad with end-of-text, masked out anyway
            self.backend.pad_token = self.backend.eos_token or self.backend.unk_token
        self.pad_id = int(self.backend.pad_token_id)

    @classmethod
    def for_texts(cls, texts: Iterable[str], name: str) -> "PretrainedTokenizer":
        """Tokenizer factory of the data modules: a pretrained vocabulary ignores the data's texts."""
        return cls(name)

    @property
    def vocab_size(self) -> int:
        return len(self.backend)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        return self.backend(text, truncation=max_length is not None, max_length=max_length)["input_ids"]

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=True)

    def batch_encode(self, texts: Sequence[str], max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and right-pad: ``ids (B, L)`` and ``mask (B, L)`` with True on real tokens."""
        out = self.backend(list(texts), padding=True, truncation=max_length is not None, max_length=max_length,
                           return_tensors="pt")
        return out["input_ids"].long(), out["attention_mask"].bool()

    def state(self) -> dict[str, Any]:
        return {"kind": "pretrained", "name": self.name}

    def save(self, path: str | Path) -> None:
        """Write the tokenizer's files (``tokenizer.json``, ``tokenizer_config.json``…) into ``path``'s folder."""
        self.backend.save_pretrained(str(Path(path).parent))
