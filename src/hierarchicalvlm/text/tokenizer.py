"""The from-scratch text path's tokenizer: a word-level Hugging Face ``tokenizers`` model trained on the data's texts.

Words are lower-cased runs of letters/digits and single punctuation marks (``"Red, then?"`` -> ``red , then ?``);
the vocabulary is closed (unseen words map to ``<unk>``) and is saved with the checkpoints, so a checkpoint's ids
never drift. Saved as a standard ``tokenizer.json`` that ``tokenizers.Tokenizer.from_file`` (and
``transformers.PreTrainedTokenizerFast(tokenizer_file=...)``) read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
WORD_PATTERN = r"[a-z0-9]+|[^\sa-z0-9]"
_WORD = re.compile(WORD_PATTERN)


def split_words(text: str) -> list[str]:
    """Lower-case and split into words and punctuation marks (what the tokenizer's pre-tokenizer does)."""
    return _WORD.findall(text.lower())


def _word_level(vocab: dict[str, int] | None = None) -> Tokenizer:
    """An (untrained unless ``vocab``) word-level tokenizer with our normaliser, splitter and ``<cls>`` prefix."""
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK) if vocab else models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated"),
    ])
    return tokenizer


def _with_cls(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{CLS} $A", special_tokens=[(CLS, 2)])
    return tokenizer


class WordTokenizer:
    """Maps text to ids over a closed vocabulary; unknown words map to ``<unk>``.

    Every encoded sequence starts with ``<cls>`` so an encoder can read out one summary token. ``vocab`` lists the
    tokens by id and must start with ``<pad>, <unk>, <cls>`` (ids 0, 1, 2).
    """

    pad_id, unk_id, cls_id = 0, 1, 2

    def __init__(self, vocab: Sequence[str]) -> None:
        if list(vocab[:3]) != [PAD, UNK, CLS]:
            raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}, {CLS!r}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocab has duplicate entries")
        self.vocab = list(vocab)
        self.backend = _with_cls(_word_level({word: i for i, word in enumerate(self.vocab)}))

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> "WordTokenizer":
        """Train the vocabulary on ``texts``: most frequent words first, ties broken alphabetically."""
        backend = _word_level()
        trainer = trainers.WordLevelTrainer(
            special_tokens=[PAD, UNK, CLS], min_frequency=min_count, vocab_size=max_size or 2**31 - 1,
            show_progress=False,
        )
        backend.train_from_iterator(list(texts), trainer)
        return cls([token for token, _ in sorted(backend.get_vocab().items(), key=lambda item: item[1])])

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        ids = self.backend.encode(text).ids
        return ids[:max_length] if max_length else ids

    def decode(self, ids: Iterable[int]) -> str:
        """The tokens of ``ids`` joined by spaces (``<unk>`` kept, padding and ``<cls>`` dropped)."""
        return " ".join(self.vocab[i] for i in ids if i not in (self.pad_id, self.cls_id))

    def batch_encode(self, texts: Sequence[str], max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and right-pad: returns ``ids (B, L)`` and ``mask (B, L)`` with True on real tokens."""
        encoded = [e.ids[:max_length] if max_length else e.ids for e in self.backend.encode_batch(list(texts))]
        length = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), length), self.pad_id, dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, ids != self.pad_id

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this tokenizer (:func:`hierarchicalvlm.text.tokenizer_from_state`)."""
        return {"kind": "word", "vocab": self.vocab}

    def save(self, path: str | Path) -> None:
        """Write a standard Hugging Face ``tokenizer.json``."""
        self.backend.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> "WordTokenizer":
        """Read a ``tokenizer.json`` written by :meth:`save` (or the earlier ``{"type": "word", "vocab": [...]}``)."""
        data = json.loads(Path(path).read_text())
        if data.get("type") == "word":  # the hand-written tokenizer's format, before tokenizers
            return cls(data["vocab"])
        try:
            vocab = data["model"]["vocab"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a word-level tokenizer.json (no model.vocab)") from err
        return cls([token for token, _ in sorted(vocab.items(), key=lambda item: item[1])])
