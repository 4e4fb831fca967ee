"""Tiny randomly initialised pretrained-encoder choices: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_VISION = "{hidden_size:32,intermediate_size:64,num_hidden_layers:1,num_attention_heads:2,image_size:16,patch_size:8}"
TINY_TEXT = ("{hidden_size:32,intermediate_size:64,num_hidden_layers:1,num_attention_heads:2,vocab_size:VOCAB,"
             "max_position_embeddings:64}")


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A WordPiece tokenizer (BERT-style files) trained on the synthetic data's lexicon, saved like a Hub folder."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    from hierarchicalvlm.data.synthetic import lexicon_texts

    folder = tmp_path_factory.mktemp("tiny_tokenizer")
    trained = BertWordPieceTokenizer(lowercase=True)
    trained.train_from_iterator(lexicon_texts(), vocab_size=200, min_frequency=1, show_progress=False)
    BertTokenizerFast(tokenizer_object=trained._tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                      sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(folder))
    return folder


def tiny_overrides(visual: str, text: str, tokenizer_dir: Path, vocab_size: int = 200) -> list[str]:
    """Hydra overrides choosing ``model/visual=<visual>`` and ``model/text=<text>`` with tiny random backbones."""
    overrides = [f"model/visual={visual}", f"model/text={text}"]
    if visual != "patch":
        overrides.append(f"model.visual.config={TINY_VISION}")
    if text != "scratch":
        overrides += [f"model.text.config={TINY_TEXT.replace('VOCAB', str(vocab_size))}",
                      f"model.text.tokenizer={tokenizer_dir}"]
    return overrides
