"""data=features: file formats, subsampling, clipping, wrong shapes named, fail vs skip, extraction script."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from hierarchicalvlm.data.annotations import AnnotationError, BadSampleError
from hierarchicalvlm.data.features import FeatureDataModule

from .helpers import REPO, load_script

FEATURES_CSV = """video,caption,question,answer,split
videos/a.mp4,first,what?,one,train
videos/b.mp4,second,what?,two,train
videos/c.webm,third,what?,three,val
videos/sub/d.mp4,fourth,what?,one,test
"""


def make_module(annotations, root, **kwargs) -> FeatureDataModule:
    args = dict(batch_size=2, num_workers=0) | kwargs
    module = FeatureDataModule(str(annotations), str(root), **args)
    module.setup()
    return module


def test_all_three_formats_load_and_batch(write_file, media):
    module = make_module(write_file("a.csv", FEATURES_CSV), media / "features", max_frames=None)
    assert module.model_inputs() | {"vocab_size": 0} == {
        "kind": "features", "feature_dim": 16, "max_frames": 100, "vocab_size": 0, "num_answers": 2, "tasks": []}
    a = module.splits["train"][0]["frames"]
    np.testing.assert_array_equal(a.numpy(), np.load(media / "features" / "videos" / "a.npy"))
    assert torch.equal(module.splits["train"][1]["frames"], torch.load(media / "features" / "videos" / "b.pt"))
    assert module.splits["val"][0]["frames"].shape == (20, 16)  # safetensors
    batch = module.collate([module.splits["train"][0], module.splits["train"][1]])
    assert batch["frames"].shape == (2, 48, 16) and batch["frame_mask"].sum(1).tolist() == [24, 48]
    assert batch["num_skipped"] == 0


def test_max_frames_subsamples_uniformly_deterministic_in_val_random_in_train(write_file, media):
    ann = write_file("a.csv", "video,split\nvideos/sub/d.mp4,train\nvideos/sub/d.mp4,val\n")
    module = make_module(ann, media / "features", max_frames=10)
    val = module.splits["val"][0]["frames"]
    assert val[:, 0].div(16).long().tolist() == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]  # row r holds 16 r ...
    assert torch.equal(module.splits["val"][0]["frames"], val)
    torch.manual_seed(0)
    draws = [tuple(module.splits["train"][0]["frames"][:, 0].div(16).long().tolist()) for _ in range(5)]
    assert len(set(draws)) > 1
    assert all(10 * i <= r < 10 * (i + 1) for draw in draws for i, r in enumerate(draw))
    fixed = make_module(ann, media / "features", max_frames=10, random_train_sampling=False)
    assert torch.equal(fixed.splits["train"][0]["frames"], val)


def test_start_end_use_feature_fps(write_file, media):
    ann = write_file("a.csv", "video,start,end,split\nvideos/sub/d.mp4,2,3.5,train\nvideos/sub/d.mp4,9,,val\n")
    module = make_module(ann, media / "features", feature_fps=10, max_frames=None)
    rows = module.splits["train"][0]["frames"][:, 0].div(16).long().tolist()
    assert rows == list(range(20, 35))
    assert module.splits["val"][0]["frames"].shape[0] == 10  # rows 90..99
    assert module.input_spec()["max_frames"] == 15
    with pytest.raises(ValueError, match="annotations have start/end but data.feature_fps is not set"):
        make_module(ann, media / "features")
    late = write_file("b.csv", "video,start,split\nvideos/sub/d.mp4,20,train\n")
    with pytest.raises(BadSampleError, match=r"d\.npy: clip start 20 s is past the features' end \(100 rows"):
        make_module(late, media / "features", feature_fps=10).splits["train"][0]
    long = write_file("c.csv", "video,start,end,split\nvideos/sub/d.mp4,8,12,train\nvideos/sub/d.mp4,8,10.1,val\n")
    with pytest.raises(BadSampleError, match=r"d\.npy: clip end 12 s is past the features' end \(100 rows at 10 "
                                             r"rows/s = 10 s\); .*data\.clamp_to_video_end=true"):
        make_module(long, media / "features", feature_fps=10).splits["train"][0]
    clamped = make_module(long, media / "features", feature_fps=10, max_frames=None, clamp_to_video_end=True)
    assert clamped.splits["train"][0]["frames"][:, 0].div(16).long().tolist() == list(range(80, 100))  # never repeated
    assert clamped.splits["val"][0]["frames"].shape[0] == 20  # within one row: rounding


@pytest.mark.parametrize("video, problem", [
    ("wrong_dim.npy", r"wrong_dim\.npy: features have shape \(10, 7\), expected \(frames, 16\)"),
    ("flat.npy", r"flat\.npy: features have shape \(16,\), expected \(frames, 16\)"),
    ("has_nan.npy", r"has_nan\.npy: features contain NaN or infinite values"),
    ("corrupt.npy", r"corrupt\.npy: cannot read feature file"),
])
def test_bad_feature_files_fail_naming_file_and_expected_shape(write_file, media, video, problem):
    ann = write_file("a.csv", f"video,split\nvideos/a.mp4,train\n{video},train\n")
    module = make_module(ann, media / "features")
    with pytest.raises(BadSampleError, match=problem) as info:
        module.splits["train"][1]
    assert "a.csv:3" in str(info.value)
    skipping = make_module(ann, media / "features", on_bad_sample="skip")
    batch = skipping.collate([skipping.splits["train"][0], skipping.splits["train"][1]])
    assert batch["num_skipped"] == 1 and batch["frames"].shape == (1, 24, 16)
    assert batch["skipped"][0][0] == Path(video).stem


def test_configured_feature_dim_must_match(write_file, media):
    ann = write_file("a.csv", "video,split\nvideos/a.mp4,train\n")
    module = make_module(ann, media / "features", feature_dim=32)
    with pytest.raises(BadSampleError, match=r"a\.npy: features have shape \(24, 16\), expected \(frames, 32\)"):
        module.splits["train"][0]


def test_missing_feature_file_found_at_setup(write_file, media):
    ann = write_file("a.csv", "video,split\nvideos/a.mp4,train\nvideos/nope.mp4,val\n")
    with pytest.raises(AnnotationError, match=r"line 3: no feature file for video 'videos/nope.mp4': looked for .*videos/nope\.npy / \.pt / \.safetensors"):
        make_module(ann, media / "features")
    module = make_module(ann, media / "features", on_bad_sample="skip")
    with pytest.raises(BadSampleError, match="every sample of this batch is bad.*nope"):
        next(iter(module.val_dataloader()))


def test_loader_with_two_workers(write_file, media):
    module = make_module(write_file("a.csv", FEATURES_CSV), media / "features", num_workers=2, batch_size=1,
                         max_frames=8)
    batches = list(module.train_dataloader())
    assert sorted(v for b in batches for v in b["video_id"]) == ["videos/a", "videos/b"]
    assert all(b["frames"].shape == (1, 8, 16) for b in batches)


def test_hydra_config(write_file, media):
    config = OmegaConf.load(REPO / "conf" / "data" / "features.yaml")
    with pytest.raises(MissingMandatoryValue, match="annotations"):
        instantiate(config)
    config.annotations, config.num_workers = str(write_file("a.csv", FEATURES_CSV)), 0
    with pytest.raises(MissingMandatoryValue, match="feature_root"):
        instantiate(config)
    config.feature_root = str(media / "features")
    module = instantiate(config)
    assert module.model_inputs()["feature_dim"] == 16 and module.input_spec()["max_frames"] == 64


def tiny_backbone():
    """A plugged-in extractor for the test: mean colour per channel."""
    return lambda frames: frames.mean(dim=(2, 3))


def test_extract_features_then_train_on_them(write_file, media, tmp_path, capsys):
    extract = load_script("extract_features")
    ann = write_file("a.csv", FEATURES_CSV.replace("videos/c.webm", "videos/c.webm").replace(
        "videos/sub/d.mp4,fourth", "videos/b.mp4,fourth"))
    out = tmp_path / "feats"
    common = ["features", "--annotations", str(ann), "--video-root", str(media), "--fps", "4", "--frame-size", "16"]
    assert extract.main(common + ["--out-dir", str(out), "--extractor", "mean-patch", "--grid", "2"]) == 0
    a = np.load(out / "videos" / "a.npy")
    assert a.shape == (4, 12) and np.load(out / "videos" / "b.npy").shape == (8, 12)  # 1 s and 2 s at 4 fps
    # a.mp4 frame k is gray 10 k: row r is the frame at (r + 0.5) / 4 s, i.e. frame 3 + 6 r
    np.testing.assert_allclose(a[:, 0] * 255, [30, 90, 150, 210], atol=4)  # YUV round trip
    assert json.loads((out / "features.json").read_text())["feature_fps"] == 4
    module = make_module(ann, out)
    assert module.model_inputs()["feature_dim"] == 12
    assert next(iter(module.train_dataloader()))["frames"].shape[-1] == 12

    conv = tmp_path / "conv"
    for _ in range(2):  # deterministic: same seed, same weights
        assert extract.main(common + ["--out-dir", str(conv), "--extractor", "random-conv", "--feature-dim", "8",
                                      "--format", "safetensors", "--overwrite"]) == 0
        from safetensors.torch import load_file

        features = load_file(str(conv / "videos" / "a.safetensors"))["features"]
        assert features.shape == (4, 8)
        if _ == 0:
            first = features
    assert torch.equal(first, features)

    plugged = tmp_path / "plugged"
    assert extract.main(common + ["--out-dir", str(plugged), "--extractor", f"{__name__}:tiny_backbone"]) == 0
    assert np.load(plugged / "videos" / "a.npy").shape == (4, 3)


def test_extract_features_reports_unreadable_videos(write_file, media, tmp_path, capsys):
    extract = load_script("extract_features")
    ann = write_file("a.csv", "video\nvideos/a.mp4\nvideos/corrupt.mp4\n")
    assert extract.main(["features", "--annotations", str(ann), "--video-root", str(media),
                         "--out-dir", str(tmp_path / "f"), "--workers", "0"]) == 1
    assert "corrupt.mp4" in capsys.readouterr().err
    assert (tmp_path / "f" / "videos" / "a.npy").exists()


def test_check_dataset_on_features(write_file, media, capsys):
    check = load_script("check_dataset")
    good = write_file("a.csv", FEATURES_CSV)
    assert check.main(["--annotations", str(good), "--feature-root", str(media / "features")]) == 0
    bad = write_file("b.csv", "video\nvideos/a.mp4\nwrong_dim.npy\nhas_nan.npy\n")
    assert check.main(["--annotations", str(bad), "--feature-root", str(media / "features")]) == 1
    out = capsys.readouterr().out
    assert "line 3:" in out and "expected (frames, 16)" in out and "line 4:" in out and "NaN" in out


def test_frame_bucket_pads_batches_to_a_multiple() -> None:
    from hierarchicalvlm.data.base import pad_frames

    frames, mask = pad_frames([torch.ones(5, 3), torch.ones(9, 3)], bucket=8)
    assert frames.shape == (2, 16, 3)
    assert mask.sum(1).tolist() == [5, 9] and not mask[:, 9:].any()
