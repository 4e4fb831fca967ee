"""Pretrained encoder choices (conf/model/visual, conf/model/text) with tiny random weights: build, train, freeze."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")  # the [pretrained] extra (part of [dev])

from hierarchicalvlm.models.visual_backbone import PretrainedFrameAdapter
from hierarchicalvlm.run.pipeline import build, run
from hierarchicalvlm.text import PretrainedTokenizer, WordTokenizer

from ..conftest import CONF
from .conftest import tiny_overrides

TINY_SPEC = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "image_size": 16, "patch_size": 8}


def test_every_choice_has_a_config() -> None:
    assert sorted(p.stem for p in (CONF / "model" / "visual").glob("*.yaml")) == ["clip", "dinov2", "patch", "siglip"]
    assert sorted(p.stem for p in (CONF / "model" / "text").glob("*.yaml")) == ["bert", "clip", "scratch"]


@pytest.mark.parametrize("visual, model_class, grid, tokens", [
    ("clip", "CLIPVisionModel", 0, 1), ("siglip", "SiglipVisionModel", 2, 4), ("dinov2", "Dinov2Model", 1, 1),
])
def test_visual_choice_encodes_frames(visual: str, model_class: str, grid: int, tokens: int, make_cfg) -> None:
    cfg = make_cfg(f"model/visual={visual}")
    spec = {**cfg.model.visual, "config": TINY_SPEC, "grid": grid, "image_size": 16 if visual == "dinov2" else None}
    assert spec["model_class"] == model_class and spec["pretrained"] and spec["freeze"]
    adapter = PretrainedFrameAdapter(spec, dim=24)
    frames = torch.rand(2, 3, 3, 12, 12)  # resized to the backbone's 16 x 16
    out = adapter(frames)
    assert out.shape == (2, 3, tokens, 24) and adapter.tokens_per_frame == tokens
    assert torch.isfinite(out).all() and not any(p.requires_grad for p in adapter.backbone.parameters())


def test_pretrained_choices_train_end_to_end(make_cfg, tiny_tokenizer_dir: Path) -> None:
    """CLIP image tower (frozen) + BERT (fine-tuned) with the BERT tokenizer: the data is tokenized by it, the
    frozen weights stay put, the fine-tuned ones move at lr_scale x lr."""
    cfg = make_cfg("debug=fdr", "logger=none", "test=false", "model.text.freeze=false", "model.visual.grid=2",
                   *tiny_overrides("clip", "bert", tiny_tokenizer_dir))
    datamodule, model, trainer = build(cfg)
    assert isinstance(datamodule.tokenizer, PretrainedTokenizer)
    assert model.net.text.backbone.config.vocab_size >= datamodule.tokenizer.vocab_size
    visual_before = {k: v.clone() for k, v in model.net.video.adapter.backbone.state_dict().items()}
    text_before = {k: v.clone() for k, v in model.net.text.backbone.state_dict().items()}
    trainer.fit(model, datamodule=datamodule)
    assert model.net.tokens_per_frame == 4
    visual_after = model.net.video.adapter.backbone.state_dict()
    assert all(torch.equal(visual_before[k], visual_after[k]) for k in visual_before)
    text_after = model.net.text.backbone.state_dict()
    assert any(not torch.equal(text_before[k], text_after[k]) for k in text_before)
    lrs = sorted({group["lr"] for group in trainer.optimizers[0].param_groups})
    assert len(lrs) == 2 and lrs[0] == pytest.approx(0.1 * lrs[1])
    # the data module's checkpoint state names the tokenizer; a fresh data module restores it
    state = datamodule.state_dict()
    assert state["tokenizer"] == {"kind": "pretrained", "name": str(tiny_tokenizer_dir)}


def test_scratch_text_uses_the_trained_word_tokenizer(make_cfg) -> None:
    datamodule, model, _ = build(make_cfg("model/text=scratch", "logger=none"))
    assert isinstance(datamodule.tokenizer, WordTokenizer)
    assert model.net.text.embed.num_embeddings == datamodule.tokenizer.vocab_size


def test_pretrained_visual_with_features_data_is_a_clear_error(make_cfg) -> None:
    from hierarchicalvlm.models.visual_backbone import build_visual_adapter

    with pytest.raises(ValueError, match="data=features"):
        build_visual_adapter({"kind": "hf", "config": TINY_SPEC}, {"kind": "features", "feature_dim": 8}, dim=16)


def test_bad_backbone_class_names_the_field() -> None:
    from hierarchicalvlm.models.backbones import load_backbone

    with pytest.raises(ValueError, match="model.visual.model_class='NoSuchModel'"):
        load_backbone({"model_class": "NoSuchModel"}, "model.visual")
