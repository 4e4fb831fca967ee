"""The from-scratch word tokenizer (Hugging Face tokenizers): training, ids, files, checkpoint state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from hierarchicalvlm.text import WordTokenizer, tokenizer_factory, tokenizer_from_state
from hierarchicalvlm.text.tokenizer import split_words

TEXTS = ["A red circle, then a blue square?", "the red one flashed twice!", "Red and BLUE"]


def test_build_orders_by_frequency_then_alphabet_and_encodes_with_cls() -> None:
    tok = WordTokenizer.build(TEXTS)
    assert tok.vocab[:3] == ["<pad>", "<unk>", "<cls>"]
    assert tok.vocab[3] == "red"  # 3 times; then the words seen twice, alphabetically: a, blue
    assert tok.vocab[4:6] == ["a", "blue"]
    ids = tok.encode("Red, green?")
    assert ids[0] == tok.cls_id and tok.decode(ids) == "red , <unk> ?"
    assert [tok.vocab[i] for i in ids[1:]] == [w if w in tok.vocab else "<unk>" for w in split_words("Red, green?")]
    ids, mask = tok.batch_encode(["red", "a blue square"], max_length=3)
    assert ids.shape == (2, 3) and mask.tolist() == [[True, True, False], [True, True, True]]
    assert WordTokenizer.build(TEXTS, min_count=2).vocab == ["<pad>", "<unk>", "<cls>", "red", "a", "blue"]


def test_saved_file_is_a_standard_tokenizer_json(tmp_path: Path) -> None:
    tok = WordTokenizer.build(TEXTS)
    tok.save(tmp_path / "tokenizer.json")
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode("red square").ids == tok.encode("red square")
    assert WordTokenizer.load(tmp_path / "tokenizer.json").vocab == tok.vocab
    legacy = tmp_path / "old.json"  # the hand-written tokenizer's files still load
    legacy.write_text(json.dumps({"type": "word", "vocab": tok.vocab}))
    assert WordTokenizer.load(legacy).encode("red square") == tok.encode("red square")


def test_checkpoint_state_round_trip_and_factory() -> None:
    tok = WordTokenizer.build(TEXTS)
    assert tokenizer_from_state({"vocab": tok.vocab}).vocab == tok.vocab  # checkpoints written before
    assert tokenizer_from_state({"tokenizer": tok.state()}).vocab == tok.vocab
    assert tokenizer_factory(None) == WordTokenizer.build and tokenizer_factory({"tokenizer": None}) == WordTokenizer.build
    with pytest.raises(ValueError, match="vocab must start"):
        WordTokenizer(["red", "<pad>"])
