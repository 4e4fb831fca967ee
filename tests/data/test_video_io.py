"""PyAV decoding: sampled timestamps, seeking against a decode-everything reference, clipping, crops, errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from hierarchicalvlm.data.video_io import (
    VideoReadError,
    crop_frames,
    decode_frames,
    probe_video,
    read_clip,
    read_clip_with_times,
    resize_for_short_side,
    sample_times,
    segment_positions,
    to_float_tensor,
    write_video,
)


def reference_frames(path, times):
    """Decode every frame and pick, for each time, the last frame whose timestamp is <= it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        decoded = [(float(f.time) - origin, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    out = []
    for t in times:
        shown = [array for time, array in decoded if time <= t + 1e-6]
        out.append(shown[-1] if shown else decoded[0][1])
    return np.stack(out)


# --- timestamps ---------------------------------------------------------------------------------
def test_uniform_times_are_segment_centres_or_random_inside_segments():
    assert sample_times(2.0, 4.0, 4) == pytest.approx([2.25, 2.75, 3.25, 3.75])
    torch.manual_seed(0)
    jittered = sample_times(2.0, 4.0, 4, random=True)
    assert jittered != pytest.approx([2.25, 2.75, 3.25, 3.75])
    for i, t in enumerate(jittered):
        assert 2.0 + 0.5 * i <= t < 2.0 + 0.5 * (i + 1)
    assert segment_positions(2, random=False) == [0.25, 0.75]


def test_fps_times_step_by_one_over_fps_and_cap_at_num_frames():
    assert sample_times(0.0, 1.0, 10, "fps", fps=4) == pytest.approx([0.125, 0.375, 0.625, 0.875])
    # a 10 s clip at 2 fps capped at 4 frames: a centred 2 s window
    assert sample_times(0.0, 10.0, 4, "fps", fps=2) == pytest.approx([4.25, 4.75, 5.25, 5.75])
    torch.manual_seed(0)
    for _ in range(20):
        times = sample_times(1.0, 11.0, 4, "fps", fps=2, random=True)
        assert np.diff(times) == pytest.approx([0.5] * 3) and 1.0 <= times[0] and times[-1] < 11.0
    assert len(sample_times(0.0, 0.1, 8, "fps", fps=2)) == 1  # shorter than one step: one frame


@pytest.mark.parametrize("kwargs, match", [
    (dict(sampling="every"), "sampling must be one of uniform, fps"),
    (dict(num_frames=0), "num_frames must be a positive integer"),
    (dict(sampling="fps", fps=None), "fps must be a positive number"),
])
def test_sample_times_rejects_bad_arguments(kwargs, match):
    args = dict(clip_start=0.0, clip_end=1.0, num_frames=4) | kwargs
    with pytest.raises(ValueError, match=match):
        sample_times(**args)


# --- decoding -----------------------------------------------------------------------------------
def test_probe(media):
    info = probe_video(media / "videos" / "long.mp4")
    assert (info.duration, info.fps, info.num_frames, info.width, info.height) == (5.0, 24.0, 120, 48, 32)
    webm = probe_video(media / "videos" / "c.webm")  # measured from its packets (WebM streams carry no duration)
    assert webm.duration == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name", ["a.mp4", "c.webm", "e.avi", "long.mp4"])
def test_decode_matches_decode_everything_reference(media, name):
    path = media / "videos" / name
    duration = probe_video(path).duration
    rng = np.random.default_rng(1)
    times = sorted(rng.uniform(0, duration, 10).tolist()) + [0.0, duration - 0.01, 0.5]  # unsorted, repeats fine
    np.testing.assert_array_equal(decode_frames(path, times), reference_frames(path, times))


def test_uniform_sampling_picks_the_expected_frames(media, frame_indices):
    frames = read_clip(media / "videos" / "a.mp4", num_frames=8)
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    assert frame_indices(frames, 10) == [1, 4, 7, 10, 13, 16, 19, 22]  # floor((i + 0.5) * 24 / 8)


def test_start_end_clipping(media, frame_indices):
    frames = read_clip(media / "videos" / "b.mp4", num_frames=4, start=0.5, end=1.0)  # frames 12..23 of 48
    assert frame_indices(frames, 5) == [13, 16, 19, 22]
    open_end = read_clip(media / "videos" / "b.mp4", num_frames=2, start=1.5)
    assert frame_indices(open_end, 5) == [39, 45]


def test_fps_sampling(media, frame_indices):
    frames = read_clip(media / "videos" / "b.mp4", num_frames=100, sampling="fps", fps=4)  # 2 s at 4 fps
    assert frame_indices(frames, 5) == [3, 9, 15, 21, 27, 33, 39, 45]
    capped = read_clip(media / "videos" / "b.mp4", num_frames=2, sampling="fps", fps=4)  # centred 0.5 s
    assert frame_indices(capped, 5) == [21, 27]


def test_seeking_decodes_a_short_stretch_of_a_long_video(media):
    path = media / "videos" / "long.mp4"
    stats: dict[str, int] = {}
    times = [4.3, 4.5, 4.7]
    frames = decode_frames(path, times, stats=stats)
    np.testing.assert_array_equal(frames, reference_frames(path, times))
    assert stats["decoded"] <= 24, "a clip in the last second should not decode the whole 120-frame video"
    decode_frames(path, [0.1, 2.1, 4.1], stats=stats)  # far-apart timestamps seek between them
    assert stats["decoded"] < 60


def test_resize_and_crop(media):
    frames = read_clip(media / "videos" / "long.mp4", num_frames=2, short_side=16)
    assert frames.shape == (2, 16, 24, 3)  # 32x48 -> shorter side 16
    assert resize_for_short_side(32, 48, 16) == (16, 24)
    grid = np.arange(2 * 6 * 8 * 1).reshape(2, 6, 8, 1)
    centre = crop_frames(grid, (4, 4))
    np.testing.assert_array_equal(centre, grid[:, 1:5, 2:6])
    torch.manual_seed(0)
    corners = {tuple(crop_frames(grid, (4, 4), random=True)[0, 0, 0]) for _ in range(30)}
    assert len(corners) > 1  # random crops move
    for _ in range(10):  # and stay inside the frame, the same window for every frame of the clip
        crop = crop_frames(grid, (4, 4), random=True)
        assert crop.shape == (2, 4, 4, 1) and (crop[1] - crop[0] == 48).all()
    with pytest.raises(ValueError, match="larger than the frames"):
        crop_frames(grid, (7, 4))


def test_to_float_tensor_matches_torch_reference():
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    frames[0, 0, 0] = (0, 255, 128)
    tensor = to_float_tensor(frames[:, ::-1])  # non-contiguous input
    reference = torch.from_numpy(frames[:, ::-1].copy()).permute(0, 3, 1, 2).double() / 255
    assert tensor.shape == (3, 3, 4, 5) and tensor.dtype == torch.float32
    assert torch.allclose(tensor.double(), reference, atol=1e-7)
    assert tensor[0, :, -1, 0].tolist() == [0.0, 1.0, pytest.approx(128 / 255)]


# --- errors name the file and the problem -------------------------------------------------------
@pytest.mark.parametrize("name, problem", [
    ("missing.mp4", "video file not found"),
    ("empty.mp4", "video file is empty (0 bytes)"),
    ("corrupt.mp4", "cannot open as a video (corrupt or unsupported format)"),
    ("sub", "is a directory"),
])
def test_unreadable_files_raise_naming_the_file(media, name, problem):
    path = media / "videos" / name
    for read in (lambda: probe_video(path), lambda: read_clip(path, 4), lambda: decode_frames(path, [0.0])):
        with pytest.raises(VideoReadError) as info:
            read()
        assert str(path) in str(info.value) and problem in str(info.value)


def test_clip_outside_the_video_raises(media):
    path = media / "videos" / "a.mp4"
    with pytest.raises(VideoReadError, match=r"a\.mp4: clip start 3 s is at or past the end of the video: "
                                             r"the video ends at 1\.000 s"):
        read_clip(path, 4, start=3.0)
    with pytest.raises(VideoReadError, match=r"a\.mp4: clip end 5 s is past the video's last frame: the video ends "
                                             r"at 1\.000 s; .*data\.clamp_to_video_end=true"):
        read_clip(path, 4, end=5.0)
    with pytest.raises(VideoReadError, match="clip end 1.2 s is past"):
        read_clip(path, 2, start=0.5, end=1.2)
    assert read_clip(path, 2, start=0.5, end=1.05).shape[0] == 2  # rounding (0.1 s) is accepted
    # asked for: cut at the last frame, frames spread over what exists, none repeated
    clamped = read_clip_with_times(path, 4, start=0.5, end=1.2, clamp_end=True)
    assert (clamped.start, clamped.end) == (0.5, 1.0) and clamped.times == pytest.approx([0.5625, 0.6875, 0.8125, 0.9375])


def test_video_without_frames_raises(tmp_path):
    path = tmp_path / "no_frames.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # header only: a valid file holding no frame
    assert path.stat().st_size > 0
    with pytest.raises(VideoReadError, match="no_frames.mp4: (contains no video stream|video has zero duration)"):
        read_clip(path, 4)


def test_write_video_checks_frames(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 of shape \(T, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8), np.uint8))
