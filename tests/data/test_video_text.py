"""data=video_text: batches, deterministic val vs random train, bad-sample policy, cache, workers, config, scripts."""

from __future__ import annotations

import logging

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

import hierarchicalvlm.data.video_text as video_text
from hierarchicalvlm.data.annotations import AnnotationError, BadSampleError
from hierarchicalvlm.data.base import IGNORE_INDEX
from hierarchicalvlm.data.video_text import VideoTextFolderDataModule

from .helpers import REPO, load_script


def make_module(annotations, media, **kwargs) -> VideoTextFolderDataModule:
    args = dict(num_frames=4, frame_size=16, batch_size=2, num_workers=0) | kwargs
    module = VideoTextFolderDataModule(str(annotations), str(media), **args)
    module.setup()
    return module


def test_batches_follow_the_data_contract(good_csv, media):
    module = make_module(good_csv, media)
    assert module.model_inputs() | {"vocab_size": 0} == {
        "kind": "pixels", "frame_shape": (3, 16, 16), "max_frames": 4, "vocab_size": 0, "num_answers": 2, "tasks": []}
    batch = next(iter(module.val_dataloader()))
    assert batch["frames"].shape == (1, 4, 3, 16, 16) and batch["frames"].dtype == torch.float32
    assert 0.0 <= batch["frames"].min() and batch["frames"].max() <= 1.0
    assert batch["frame_mask"].all() and batch["video_id"] == ["videos/c"]
    assert module.tokenizer.decode(batch["caption_ids"][0].tolist()) == "a <unk> fade"  # "webm" only appears in val text
    assert batch["answer"].tolist() == [IGNORE_INDEX]  # "webm" is not a training answer
    assert batch["num_skipped"] == 0 and batch["skipped"] == []


def test_vocabulary_comes_from_training_annotations_without_decoding(good_csv, media, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("setup must not decode videos")

    monkeypatch.setattr(video_text, "read_clip", no_decoding)
    module = make_module(good_csv, media)
    assert module.answers == ["slow", "square"]
    assert "fades" in module.tokenizer.vocab and "webm" not in module.tokenizer.vocab  # val text is not seen


def test_val_sampling_is_deterministic_and_train_sampling_random(write_file, media, frame_indices):
    ann = write_file("a.csv", "video,caption,split\nvideos/b.mp4,x,train\nvideos/b.mp4,x,val\n")
    module = make_module(ann, media, num_frames=4, frame_size=32)
    val = module.splits["val"]
    first, second = val[0]["frames"], val[0]["frames"]
    assert torch.equal(first, second)
    assert frame_indices(first, 5) == [6, 18, 30, 42]  # segment centres of 48 frames
    torch.manual_seed(0)
    draws = [tuple(frame_indices(module.splits["train"][0]["frames"], 5)) for _ in range(8)]
    assert len(set(draws)) > 1
    for draw in draws:  # jitter stays inside each segment
        assert all(12 * i <= f < 12 * (i + 1) for i, f in enumerate(draw))
    fixed = make_module(ann, media, num_frames=4, frame_size=32, random_train_sampling=False)
    assert torch.equal(fixed.splits["train"][0]["frames"], first)


def test_random_crop_in_training_centre_crop_in_val(tmp_path, write_file, media):
    from hierarchicalvlm.data.video_io import write_video

    gradient = torch.arange(32).repeat(32, 1)[None, :, :, None].expand(4, 32, 32, 3).to(torch.uint8).numpy() * 7
    write_video(tmp_path / "grad.mp4", gradient.copy(), options={"qp": "0"})
    ann = write_file("a.csv", f"video,split\n{tmp_path / 'grad.mp4'},train\n{tmp_path / 'grad.mp4'},val\n")
    module = make_module(ann, media, num_frames=2, frame_size=16, short_side=32)
    val = module.splits["val"][0]["frames"]
    assert torch.equal(val, module.splits["val"][0]["frames"])
    torch.manual_seed(0)
    lefts = {round(float(module.splits["train"][0]["frames"][0, 0, 0, 0]) * 255 / 7) for _ in range(10)}
    assert len(lefts) > 1
    assert round(float(val[0, 0, 0, 0]) * 255 / 7) == 8  # centre crop of 32 columns starts at 8


def test_start_end_clipping_in_annotations(write_file, media, frame_indices):
    ann = write_file("a.csv", "video,start,end,split\nvideos/b.mp4,0.5,1.0,train\nvideos/b.mp4,1.0,2.0,val\n")
    module = make_module(ann, media, num_frames=4, frame_size=32)
    assert frame_indices(module.splits["val"][0]["frames"], 5) == [27, 33, 39, 45]
    assert module.splits["val"][0]["video_id"] == "videos/b#1-2"
    torch.manual_seed(0)
    for _ in range(5):
        assert all(12 <= f < 24 for f in frame_indices(module.splits["train"][0]["frames"], 5))


def test_fps_sampling_gives_masked_variable_length_clips(good_csv, media):
    module = make_module(good_csv, media, sampling="fps", fps=4, num_frames=6, batch_size=3)
    batch = next(iter(module.test_dataloader()))
    assert batch["frames"].shape[1] == 4  # e.avi: 1 s at 4 fps
    module.batch_size = 3
    batch = module.collate([module.splits["train"][i] for i in range(3)])
    assert batch["frame_mask"].sum(1).tolist() == [4, 6, 4]  # a.mp4 1 s, b.mp4 2 s capped at 6, d.mp4 1 s
    assert batch["frames"][0, 4:].abs().sum() == 0


# --- bad samples --------------------------------------------------------------------------------
BAD_CSV = """video,caption,split
videos/a.mp4,good one,train
videos/corrupt.mp4,broken,train
videos/b.mp4,good two,train
videos/corrupt.mp4,broken,val
"""


def test_corrupt_video_fail_names_file_and_line(write_file, media):
    module = make_module(write_file("bad.csv", BAD_CSV), media)
    assert module.splits["train"][0]["video_id"] == "videos/a"
    with pytest.raises(BadSampleError) as info:
        module.splits["train"][1]
    message = str(info.value)
    assert "corrupt.mp4" in message and "bad.csv:3" in message and "corrupt or unsupported format" in message


def test_skip_drops_bad_samples_and_reports_them_in_the_batch(write_file, media):
    module = make_module(write_file("bad.csv", BAD_CSV), media, on_bad_sample="skip", batch_size=3)
    batch = module.collate([module.splits["train"][i] for i in range(3)])
    assert batch["frames"].shape[0] == 2 and batch["video_id"] == ["videos/a", "videos/b"]
    assert batch["num_skipped"] == 1
    (name, reason), = batch["skipped"]
    assert name == "videos/corrupt" and "corrupt.mp4" in reason and "corrupt or unsupported" in reason
    with pytest.raises(BadSampleError, match=r"every sample of this batch is bad.*videos/corrupt: .*corrupt\.mp4"):
        next(iter(module.val_dataloader()))


def test_missing_and_empty_files_are_found_before_training(write_file, media, caplog):
    ann = write_file("bad.csv", "video,split\nvideos/a.mp4,train\nvideos/missing.mp4,train\nvideos/empty.mp4,val\n")
    with pytest.raises(AnnotationError) as info:
        make_module(ann, media)
    message = str(info.value)
    assert "line 3: file not found:" in message and "missing.mp4" in message
    assert "line 4: file is empty (0 bytes):" in message and "empty.mp4" in message
    assert "on_bad_sample=skip" in message
    with caplog.at_level(logging.WARNING):
        module = make_module(ann, media, on_bad_sample="skip", batch_size=2)
    assert "2 sample(s) will be skipped" in caplog.text and "missing.mp4" in caplog.text
    batch = module.collate([module.splits["train"][0], module.splits["train"][1]])
    assert batch["num_skipped"] == 1 and "video file not found" in batch["skipped"][0][1]


def test_loader_with_two_workers(good_csv, media):
    module = make_module(good_csv, media, num_workers=2, batch_size=1)
    ids = [vid for batch in module.train_dataloader() for vid in batch["video_id"]]
    assert sorted(ids) == ["videos/a", "videos/b", "videos/sub/d"]


def test_frame_cache_is_filled_then_used(good_csv, media, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    module = make_module(good_csv, media, cache_dir=str(cache))
    fresh = make_module(good_csv, media)
    first = module.splits["val"][0]["frames"]
    assert torch.equal(first, fresh.splits["val"][0]["frames"])  # the cache holds what decoding gives
    assert len(list(cache.glob("c-*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached clip must not be decoded again")

    monkeypatch.setattr(video_text, "read_clip", no_decoding)
    assert torch.equal(module.splits["val"][0]["frames"], first)
    other = make_module(good_csv, media, cache_dir=str(cache), num_frames=2)
    with pytest.raises(RuntimeError, match="a cached clip must not be decoded again"):
        other.splits["val"][0]  # another setting is another cache entry


@pytest.mark.parametrize("kwargs, match", [
    (dict(sampling="dense"), "sampling must be one of uniform, fps"),
    (dict(on_bad_sample="ignore"), "on_bad_sample must be one of fail, skip"),
    (dict(num_frames=0), "num_frames must be a positive number"),
    (dict(frame_size=[16, 16, 3]), "frame_size must be a positive int or"),
    (dict(frame_size=32, short_side=16), "short_side .16. must be >= the largest side"),
])
def test_bad_arguments_are_named(good_csv, media, kwargs, match):
    with pytest.raises(ValueError, match=match):
        VideoTextFolderDataModule(str(good_csv), str(media), **kwargs)
    with pytest.raises(ValueError, match="video_root .* is not a directory"):
        VideoTextFolderDataModule(str(good_csv), str(media / "nope"))


def test_hydra_config_instantiates_and_requires_paths(good_csv, media):
    config = OmegaConf.load(REPO / "conf" / "data" / "video_text.yaml")
    with pytest.raises(MissingMandatoryValue, match="annotations"):
        instantiate(config)
    config.annotations, config.video_root = str(good_csv), str(media)
    config.num_workers, config.frame_size = 0, [16, 24]
    module = instantiate(config)
    assert isinstance(module, VideoTextFolderDataModule)
    assert module.model_inputs()["frame_shape"] == (3, 16, 24)
    assert next(iter(module.val_dataloader()))["frames"].shape[-2:] == (16, 24)


# --- scripts ------------------------------------------------------------------------------------
def test_check_dataset_exit_codes(good_csv, write_file, media, capsys):
    check = load_script("check_dataset")
    assert check.main(["--annotations", str(good_csv), "--video-root", str(media)]) == 0
    out = capsys.readouterr().out
    assert "| train | 3 |" in out and "no problems" in out
    bad = write_file("bad.csv", "video,caption\nvideos/a.mp4,fine\nvideos/corrupt.mp4,x\nvideos/empty.mp4,y\n"
                                "videos/missing.mp4,z\nvideos/b.mp4,\n")
    assert check.main(["--annotations", str(bad), "--video-root", str(media)]) == 1
    out = capsys.readouterr().out
    for expected in ("corrupt.mp4", "empty.mp4", "missing.mp4", "line 6: empty caption"):
        assert expected in out
    malformed = write_file("malformed.csv", "video,start\nvideos/a.mp4,soon\n")
    assert check.main(["--annotations", str(malformed), "--video-root", str(media)]) == 1
    assert "line 2: start must be a number" in capsys.readouterr().out


def test_extract_features_frames_mode_fills_the_training_cache(good_csv, media, tmp_path, monkeypatch):
    extract = load_script("extract_features")
    cache = tmp_path / "cache"
    assert extract.main(["frames", "--annotations", str(good_csv), "--video-root", str(media),
                         "--cache-dir", str(cache), "--num-frames", "4", "--frame-size", "16"]) == 0
    assert len(list(cache.glob("*.npy"))) == 5

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache filled by extract_features must be used")

    monkeypatch.setattr(video_text, "read_clip", no_decoding)
    module = make_module(good_csv, media, cache_dir=str(cache))
    assert next(iter(module.train_dataloader()))["frames"].shape == (2, 4, 3, 16, 16)
