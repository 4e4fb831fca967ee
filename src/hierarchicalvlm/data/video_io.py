"""Reading frames from video files with PyAV: which timestamps to sample, decoding them, resizing and cropping.

The pipeline of one clip is::

    probe (duration, fps) -> clip bounds (start/end) -> sample timestamps (uniform-N or fps)
      -> decode only around those timestamps (seek when the next one is past a keyframe interval)
      -> resize to cover the output size -> crop (centre, or random for training) -> float (T, 3, H, W) in [0, 1]

Every failure is a :class:`VideoReadError` whose message starts with the file's path, so the
bad-sample policy can skip it or stop with a message that says which file to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional, Sequence

import av
import numpy as np
import torch

from hierarchicalvlm.data.annotations import BadSampleError

SAMPLING = ("uniform", "fps")
MIN_SEEK_GAP_S = 0.5  # never seek for shorter jumps: decoding a few frames is cheaper than a seek
END_TOLERANCE_S = 0.5  # an annotation's end may pass the video's end by this much (rounded metadata)
_EPS = 1e-6


class VideoReadError(BadSampleError):
    """A video file is missing, empty, corrupt or does not contain the requested clip."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video's container says about it (``duration`` in seconds, ``fps`` frames per second)."""

    path: str
    duration: float
    fps: Optional[float]
    num_frames: Optional[int]
    width: int
    height: int


# ----------------------------------------------------------------------------------------------
# Which timestamps to read
# ----------------------------------------------------------------------------------------------
def segment_positions(count: int, random: bool, generator: Optional[torch.Generator] = None) -> list[float]:
    """``count`` positions in ``[0, 1)``, one per equal segment: its centre, or a random point of it."""
    if count <= 0:
        raise ValueError(f"count must be a positive number of frames, got {count}")
    if random:
        offsets = torch.rand(count, generator=generator, dtype=torch.float64).tolist()
    else:
        offsets = [0.5] * count
    return [(i + u) / count for i, u in enumerate(offsets)]


def sample_times(
    clip_start: float,
    clip_end: float,
    num_frames: int,
    sampling: str = "uniform",
    fps: Optional[float] = None,
    random: bool = False,
    generator: Optional[torch.Generator] = None,
) -> list[float]:
    """Timestamps (seconds, ascending, inside ``[clip_start, clip_end)``) of the frames to read.

    * ``uniform``: ``num_frames`` frames, one per equal segment of the clip — the segment's centre,
      or a random point of it when ``random`` (temporal jitter for training).
    * ``fps``: one frame every ``1 / fps`` seconds, at most ``num_frames`` of them; a clip longer
      than ``num_frames / fps`` seconds is cut to a window of that length — centred, or at a random
      place when ``random`` (which also jitters the phase within one ``1 / fps`` step).
    """
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLING)}, got {sampling!r}")
    if num_frames <= 0:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}")
    duration = clip_end - clip_start
    if duration <= 0:
        raise ValueError(f"clip_end ({clip_end}) must be greater than clip_start ({clip_start})")
    if sampling == "uniform":
        return [clip_start + p * duration for p in segment_positions(num_frames, random, generator)]
    if fps is None or fps <= 0:
        raise ValueError(f"fps must be a positive number of frames per second with sampling='fps', got {fps!r}")
    count = max(1, min(num_frames, int(math.floor(duration * fps + _EPS))))
    slack = max(0.0, duration - count / fps)
    if random:
        offset, phase = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        offset *= slack
    else:
        offset, phase = slack / 2, 0.5
    step = min(1 / fps, duration / count)
    return [clip_start + offset + (k + phase) * step for k in range(count)]


# ----------------------------------------------------------------------------------------------
# Opening and probing
# ----------------------------------------------------------------------------------------------
def _open(path: str | Path) -> tuple[Any, Any]:
    """Open ``path`` and return ``(container, video_stream)``, or raise a VideoReadError naming it."""
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"{path}: video file not found")
    if path.is_dir():
        raise VideoReadError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: video file is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoReadError(f"{path}: cannot open as a video (corrupt or unsupported format): {err}") from err
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{path}: contains no video stream")
    return container, container.streams.video[0]


def _origin(stream: Any) -> float:
    """Time (s) of the stream's first frame; frame times are reported relative to it."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _frame_time(frame: Any, path: Path) -> float:
    if frame.time is None:
        raise VideoReadError(f"{path}: frame without a timestamp; re-encode the video (e.g. ffmpeg -i IN OUT.mp4)")
    return float(frame.time)


def _probe(container: Any, stream: Any, path: Path) -> VideoInfo:
    fps = float(stream.average_rate) if stream.average_rate else None
    num_frames = int(stream.frames) if stream.frames else None
    if stream.duration is not None and stream.time_base is not None:
        duration: Optional[float] = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    elif num_frames and fps:
        duration = num_frames / fps
    else:
        duration = None
    if duration is None:  # no metadata: decode the whole stream once to find its end
        origin, last, count = _origin(stream), None, 0
        try:
            for frame in container.decode(stream):
                last, count = _frame_time(frame, path) - origin, count + 1
        except av.error.FFmpegError as err:
            raise VideoReadError(f"{path}: decoding failed while measuring its duration: {err}") from err
        if last is not None:
            duration = last + (1 / fps if fps else 0.0)
            num_frames = count
        container.seek(0)
    if not duration or duration <= 0:
        raise VideoReadError(f"{path}: video has zero duration (no frames)")
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise VideoReadError(f"{path}: video stream has no frame size (corrupt header?)")
    return VideoInfo(str(path), duration, fps, num_frames, width, height)


def probe_video(path: str | Path) -> VideoInfo:
    """Duration, frame rate, frame count and size of a video, from its container's metadata."""
    container, stream = _open(path)
    try:
        return _probe(container, stream, Path(path))
    finally:
        container.close()


def clip_bounds(info: VideoInfo, start: Optional[float], end: Optional[float]) -> tuple[float, float]:
    """The ``[start, end)`` clip in seconds, checked against the video's duration."""
    clip_start = 0.0 if start is None else start
    clip_end = info.duration if end is None else end
    if clip_start >= info.duration:
        raise VideoReadError(f"{info.path}: clip start {clip_start:g} s is at or past the video's end ({info.duration:g} s)")
    if clip_end > info.duration + END_TOLERANCE_S:
        raise VideoReadError(f"{info.path}: clip end {clip_end:g} s is past the video's end ({info.duration:g} s)")
    clip_end = min(clip_end, info.duration)
    if clip_end <= clip_start:
        raise VideoReadError(f"{info.path}: empty clip [{clip_start:g}, {clip_end:g}) s")
    return clip_start, clip_end


# ----------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------
def cover_size(height: int, width: int, out_height: int, out_width: int) -> tuple[int, int]:
    """Smallest size with the aspect ratio of ``(height, width)`` that covers ``(out_height, out_width)``."""
    scale = max(out_height / height, out_width / width)
    return max(out_height, round(height * scale)), max(out_width, round(width * scale))


def resize_for_short_side(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Size with the aspect ratio of ``(height, width)`` whose shorter side is ``short_side``."""
    scale = short_side / min(height, width)
    return max(short_side, round(height * scale)), max(short_side, round(width * scale))


def decode_frames(
    path: str | Path,
    times: Sequence[float],
    size: Optional[tuple[int, int]] = None,
    stats: Optional[dict[str, int]] = None,
) -> np.ndarray:
    """The frames shown at ``times`` (seconds from the first frame) as uint8 ``(T, H, W, 3)`` RGB.

    The frame shown at ``t`` is the last one whose timestamp is ``<= t``. Decoding starts at the
    keyframe before the first timestamp and seeks ahead whenever the next timestamp is further
    than a keyframe interval away, so a short clip of a long video decodes a short stretch of it.
    ``size = (H, W)`` resizes while converting (FFmpeg's area filter). ``stats["decoded"]``
    receives the number of decoded frames.
    """
    path = Path(path)
    container, stream = _open(path)
    try:
        frames, decoded = _decode_at(container, stream, list(times), path)
        out = _to_rgb(frames, size, path)
    finally:
        container.close()
    if stats is not None:
        stats["decoded"] = decoded
    return out


def _decode_at(container: Any, stream: Any, times: list[float], path: Path) -> tuple[list[Any], int]:
    """Pick the decoded frame shown at each of ``times``; returns ``(frames, number decoded)``."""
    if not times:
        raise ValueError("times must hold at least one timestamp")
    origin = _origin(stream)
    order = sorted(range(len(times)), key=times.__getitem__)
    chosen: list[Any] = [None] * len(times)

    def frames_from(seconds: float) -> Any:
        if seconds > 0:
            container.seek(int((Fraction(seconds + origin) / stream.time_base)), stream=stream, backward=True)
        elif decoded:
            container.seek(0)  # restart from the beginning
        return container.decode(stream)

    decoded, k, previous = 0, 0, None
    gop = 0.0  # lower bound on the keyframe interval, learned while decoding
    last_key: Optional[float] = None
    sought_k = -1  # the target index of the last seek: a target is never sought twice
    seeked = times[order[0]] > MIN_SEEK_GAP_S
    if seeked:
        sought_k = 0
    stream_iter = frames_from(times[order[0]] if seeked else 0.0)
    retried = False
    try:
        while k < len(order):
            try:
                frame = next(stream_iter)
            except StopIteration:  # end of stream: later timestamps show the last frame
                if previous is None:
                    raise VideoReadError(f"{path}: no decodable frame at or after {times[order[k]]:.3f} s")
                for index in order[k:]:
                    chosen[index] = previous
                break
            decoded += 1
            t = _frame_time(frame, path) - origin
            if seeked and previous is None:  # first frame after a seek
                if t > times[order[k]] + _EPS and not retried:
                    # the seek landed after the target (imprecise index): decode from the start instead
                    retried, seeked = True, False
                    stream_iter = frames_from(0.0)
                    continue
                # a backward seek lands on the last keyframe before the target: none lies in between
                gop = max(gop, times[order[k]] - t)
            if frame.key_frame:
                gop = max(gop, t - last_key) if last_key is not None else gop
                last_key = t
            elif last_key is not None:
                gop = max(gop, t - last_key)
            while k < len(order) and t > times[order[k]] + _EPS:
                chosen[order[k]] = previous if previous is not None else frame
                k += 1
            if k == len(order):
                break
            previous = frame
            if k != sought_k and times[order[k]] - t > max(MIN_SEEK_GAP_S, gop):
                stream_iter, previous, seeked, sought_k = frames_from(times[order[k]]), None, True, k
                last_key = None  # keyframe intervals are measured between consecutive keyframes only
    except av.error.FFmpegError as err:
        raise VideoReadError(f"{path}: decoding failed near {times[order[min(k, len(order) - 1)]]:.3f} s: {err}") from err
    return chosen, decoded


def _to_rgb(frames: list[Any], size: Optional[tuple[int, int]], path: Path) -> np.ndarray:
    """Convert (and resize) the chosen frames once each, even when several timestamps share one."""
    converted: dict[int, np.ndarray] = {}
    out = []
    try:
        for frame in frames:
            key = id(frame)
            if key not in converted:
                if size is None:
                    converted[key] = frame.to_ndarray(format="rgb24")
                else:
                    resized = frame.reformat(width=size[1], height=size[0], format="rgb24", interpolation="AREA")
                    converted[key] = resized.to_ndarray()
            out.append(converted[key])
        return np.stack(out)
    except (av.error.FFmpegError, ValueError) as err:
        raise VideoReadError(f"{path}: cannot convert frames to RGB: {err}") from err


def read_clip(
    path: str | Path,
    num_frames: int,
    sampling: str = "uniform",
    fps: Optional[float] = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
    short_side: Optional[int] = None,
    random: bool = False,
    generator: Optional[torch.Generator] = None,
) -> np.ndarray:
    """Sample, decode and resize (shorter side to ``short_side``) one clip: uint8 ``(T, H, W, 3)``."""
    path = Path(path)
    container, stream = _open(path)
    try:
        info = _probe(container, stream, path)
        clip_start, clip_end = clip_bounds(info, start, end)
        times = sample_times(clip_start, clip_end, num_frames, sampling, fps, random, generator)
        frames, _ = _decode_at(container, stream, times, path)
        size = None
        if short_side is not None:
            size = resize_for_short_side(frames[0].height, frames[0].width, short_side)
        return _to_rgb(frames, size, path)
    finally:
        container.close()


# ----------------------------------------------------------------------------------------------
# Cropping and conversion
# ----------------------------------------------------------------------------------------------
def crop_frames(
    frames: np.ndarray, size: tuple[int, int], random: bool = False, generator: Optional[torch.Generator] = None
) -> np.ndarray:
    """Crop ``(T, H, W, C)`` frames to ``size = (h, w)``: the centre, or one random window for the whole clip."""
    height, width = frames.shape[1:3]
    out_h, out_w = size
    if out_h > height or out_w > width:
        raise ValueError(f"crop size {size} is larger than the frames ({height}, {width}); resize them first")
    if random:
        top = int(torch.randint(0, height - out_h + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - out_w + 1, (1,), generator=generator))
    else:
        top, left = (height - out_h) // 2, (width - out_w) // 2
    return frames[:, top : top + out_h, left : left + out_w]


def to_float_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float32 ``(T, 3, H, W)`` in ``[0, 1]``.

    Converted with numpy: torch's intra-op threads cost milliseconds per small clip on a busy CPU."""
    array = np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)
    array /= np.float32(255.0)
    return torch.from_numpy(array)


# ----------------------------------------------------------------------------------------------
# Writing (test fixtures, benchmarks, re-encoding)
# ----------------------------------------------------------------------------------------------
def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 24,
    codec: str = "libx264",
    options: Optional[dict[str, str]] = None,
) -> Path:
    """Encode uint8 ``(T, H, W, 3)`` RGB frames (even H and W) into ``path``; the container follows the suffix."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if options:
            stream.options = dict(options)
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
