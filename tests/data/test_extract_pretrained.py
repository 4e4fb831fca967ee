"""scripts/extract_features.py with a pretrained backbone by name (tiny random weights: nothing is downloaded)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .helpers import load_script

pytest.importorskip("transformers")

TINY = "config={hidden_size:24,intermediate_size:48,num_hidden_layers:1,num_attention_heads:2,image_size:16,patch_size:8}"


@pytest.mark.parametrize("name", ["dinov2"])
def test_extract_features_with_a_pretrained_backbone_by_name(name, write_file, media, tmp_path) -> None:
    extract = load_script("extract_features")
    ann = write_file("a.csv", "video,caption\nvideos/a.mp4,first\n")
    out = tmp_path / "feats"
    args = ["features", "--annotations", str(ann), "--video-root", str(media), "--fps", "4", "--frame-size", "16",
            "--out-dir", str(out), "--extractor", name, "--set", TINY, "--set", "image_size=16", "--workers", "0"]
    assert extract.main(args) == 0
    features = np.load(out / "videos" / "a.npy")
    assert features.shape == (4, 24) and np.isfinite(features).all()  # 1 s at 4 fps, the backbone's width
    assert len({row.tobytes() for row in features}) == 4  # the four frames differ, so do their features
    meta = json.loads((out / "features.json").read_text())
    assert meta["extractor"] == name and meta["feature_dim"] == 24 and TINY in meta["extractor_overrides"]


def test_unknown_extractor_names_the_pretrained_choices() -> None:
    extract = load_script("extract_features")
    with pytest.raises(SystemExit, match="clip, dinov2, siglip"):
        extract.build_extractor("nope", 8, 2, 0)
