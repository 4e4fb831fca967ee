"""A word-level tokenizer whose vocabulary is built from the training texts and saved with the checkpoints."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import torch

PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    """Lower-case and split into words and punctuation marks."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Maps text to ids over a closed vocabulary; unknown words map to ``<unk>``.

    Every encoded sequence starts with ``<cls>`` so an encoder can read out one summary token.
    """

    def __init__(self, vocab: Sequence[str]) -> None:
        if list(vocab[:3]) != [PAD, UNK, CLS]:
            raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}, {CLS!r}")
        self.vocab = list(vocab)
        self.index = {word: i for i, word in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError("vocab has duplicate entries")

    pad_id, unk_id, cls_id = 0, 1, 2

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> "WordTokenizer":
        """Build a vocabulary from ``texts``, most frequent words first (ties broken alphabetically)."""
        counts = Counter(word for text in texts for word in split_words(text))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - 3)]
        return cls([PAD, UNK, CLS, *words])

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        ids = [self.cls_id] + [self.index.get(w, self.unk_id) for w in split_words(text)]
        return ids[:max_length] if max_length else ids

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.vocab[i] for i in ids if i not in (self.pad_id, self.cls_id))

    def batch_encode(self, texts: Sequence[str], max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and right-pad: returns ``ids (B, L)`` and ``mask (B, L)`` with True on real tokens."""
        encoded = [self.encode(t, max_length) for t in texts]
        length = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), length), self.pad_id, dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, ids != self.pad_id

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": "word", "vocab": self.vocab}, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> "WordTokenizer":
        data = json.loads(Path(path).read_text())
        return cls(data["vocab"])
