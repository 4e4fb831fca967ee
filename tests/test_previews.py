"""Sample previews at validation, logged as images to TensorBoard (read back from the event file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hierarchicalvlm.callbacks.previews import pick_frames, render_preview, slice_batch
from hierarchicalvlm.run.pipeline import run


def test_previews_reach_tensorboard(make_cfg, tmp_path: Path) -> None:
    run(make_cfg("debug=limit", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
                 "callbacks.throughput.measure_flops=false", "test=false", "logger=tensorboard",
                 "callbacks.previews.num_samples=3", "callbacks.previews.num_frames=4"))
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "tensors": 0}).Reload()
    assert "val/previews" in events.Tags()["images"]
    image = events.Images("val/previews")[-1]
    assert image.height > 3 * 64 and image.width >= 4 * 64  # three samples of four 64-pixel frames each
    text = events.Tensors("val/previews/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert text.count("predicted:") == 3 and "answer:" in text and "Q: " in text


def test_pick_frames_spreads_over_the_real_frames_only() -> None:
    frames = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 3, 2, 2) / 10
    mask = torch.tensor([True, True, True, True, False, False])
    picked = pick_frames(frames, mask, 3)
    assert [int(p[0, 0, 0]) for p in picked] == [0, 51, 76]  # frames 0, 2, 3 (x 0.1 x 255); padding never shown
    assert pick_frames(frames, torch.zeros(6, dtype=torch.bool), 3) == []


def test_render_and_slice() -> None:
    image = render_preview([np.zeros((8, 8, 3), np.uint8)] * 2, [("Q: what?", (0, 0, 0)), ("predicted: yes", (0, 140, 0))])
    assert image.dtype == np.uint8 and image.shape[2] == 3 and image.shape[0] >= 64 + 2 * 14
    assert (image != 255).any(axis=2)[64 + 6:].any()  # the text was drawn below the frames
    batch = {"frames": torch.zeros(5, 2, 3, 4, 4), "video_id": list("abcde"), "padded": False}
    sliced = slice_batch(batch, 2)
    assert sliced["frames"].shape[0] == 2 and sliced["video_id"] == ["a", "b"] and sliced["padded"] is False


def test_bad_settings_name_the_config() -> None:
    from hierarchicalvlm.callbacks.previews import SamplePreviews

    with pytest.raises(ValueError, match="callbacks.previews"):
        SamplePreviews(num_samples=0)
