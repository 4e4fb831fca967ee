"""Reading frames from video files with PyAV: which timestamps to sample, decoding them, resizing and cropping.

The pipeline of one clip is::

    probe (once per file: where the video frames end, keyframes, rotation; see video_probe)
      -> clip bounds (start/end, checked against the video stream's real end) -> sample timestamps
      -> decode the frame shown at each timestamp (exact seeking, see _Decoder)
      -> resize to cover the output size, rotate as FFmpeg displays -> crop -> float (T, 3, H, W) in [0, 1]

Every failure is a :class:`VideoReadError` whose message starts with the file's path (and whose ``kind``
names the problem), so the bad-sample policy can skip it or stop with a message that says which file to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import av
import numpy as np
import torch

from hierarchicalvlm.data.video_probe import VideoInfo, VideoReadError, open_video, probe_video

__all__ = [
    "SAMPLING", "Clip", "VideoInfo", "VideoReadError", "clip_bounds", "crop_frames", "decode_frames", "probe_video",
    "read_clip", "read_clip_with_times", "resize_for_short_side", "sample_times", "segment_positions",
    "to_float_tensor", "write_video",
]

SAMPLING = ("uniform", "fps")
MIN_SEEK_GAP_S = 0.5  # never seek for shorter jumps: decoding a few frames is cheaper than a seek
END_TOLERANCE_S = 0.1  # an annotation's end may pass the last frame by this much (or one frame): rounding
MAX_BACKOFFS = 8  # seeks that land late are repeated this many times, further back each time, then from the start
_EPS = 1e-6


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
# Clip bounds
# ----------------------------------------------------------------------------------------------
def end_tolerance(info: VideoInfo) -> float:
    """How far an annotation's ``end`` may pass the last frame and still count as the video's end (rounding)."""
    return max(END_TOLERANCE_S, info.frame_interval)


def clip_bounds(
    info: VideoInfo, start: Optional[float], end: Optional[float], clamp_end: bool = False
) -> tuple[float, float]:
    """The ``[start, end)`` clip in seconds, checked against where the video stream's frames end.

    A clip that ends past the last frame (by more than :func:`end_tolerance`) is an error naming both the
    video's end and the container's length, unless ``clamp_end`` asks to cut it at the video's end. Frames are
    never repeated to fill a clip."""
    clip_start = 0.0 if start is None else start
    clip_end = info.duration if end is None else end
    fix = "fix the annotation's start/end, or set data.clamp_to_video_end=true to cut clips at the video's end"
    if clip_start >= info.duration:
        raise VideoReadError(
            f"{info.path}: clip start {clip_start:g} s is at or past the end of the video: {info.describe_end()}; "
            f"fix the annotation's start", "clip past video end")
    if clip_end > info.duration + end_tolerance(info) and not clamp_end:
        raise VideoReadError(
            f"{info.path}: clip end {clip_end:g} s is past the video's last frame: {info.describe_end()}; {fix}",
            "clip past video end")
    clip_end = min(clip_end, info.duration)
    if clip_end <= clip_start:
        raise VideoReadError(f"{info.path}: empty clip [{clip_start:g}, {clip_end:g}) s", "clip past video end")
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


class _Decoder:
    """One open video, positioned for each requested time so that the frame returned is the one shown then.

    Positioning seeks (backward) to the last keyframe at or before the time, as the probe listed it. The
    first frame after a seek must not be later than the time — an imprecise index (MPEG-TS, unindexed WebM)
    can land late or past the end — otherwise it seeks again further back, doubling the margin each time,
    and finally decodes from the start of the file. ``stats`` counts decoded frames, seeks, back-offs and
    restarts."""

    def __init__(self, path: Path, info: VideoInfo) -> None:
        self.path, self.info = path, info
        self.container, self.stream = open_video(path)
        self.fresh = True  # nothing read yet: the file's start is where decoding would begin
        self.stats = {"decoded": 0, "seeks": 0, "backoffs": 0, "restarts": 0}

    def close(self) -> None:
        self.container.close()

    def from_start(self) -> Iterator[Any]:
        if not self.fresh:  # re-open: a seek to 0 is as imprecise as any other on some containers
            self.container.close()
            self.container, self.stream = open_video(self.path)
            self.stats["restarts"] += 1
        self.fresh = False
        return self.container.decode(self.stream)

    def seek(self, seconds: float) -> Iterator[Any]:
        self.fresh = False
        self.stats["seeks"] += 1
        target = round(Fraction(seconds + self.info.origin) / self.stream.time_base)
        self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        return self.container.decode(self.stream)

    def position(self, t: float, attempt: int) -> tuple[Iterator[Any], bool]:
        """Frames from a point at or before ``t``: ``(frames, whether they start at the file's start)``."""
        info = self.info
        key = info.keyframe_before(t)
        anchor = t if key is None else key
        if attempt > 0:
            anchor -= max(info.keyframe_interval or 0.0, MIN_SEEK_GAP_S) * 2 ** (attempt - 1)
        if anchor < MIN_SEEK_GAP_S or attempt > MAX_BACKOFFS or (self.fresh and anchor <= (info.keyframes or [0.0])[0]):
            return self.from_start(), True
        return self.seek(anchor), False

    def worth_seeking(self, current: float, t: float) -> bool:
        """Whether the frame at ``t`` is reached sooner by seeking than by decoding on from ``current``."""
        key = self.info.keyframe_before(t)
        if key is not None:
            return key - current > MIN_SEEK_GAP_S
        return t - current > max(MIN_SEEK_GAP_S, self.info.keyframe_interval or 0.0)

    def frame_time(self, frame: Any) -> float:
        stamp = frame.pts if frame.pts is not None else frame.dts
        if stamp is None:
            raise VideoReadError(
                f"{self.path}: frame without a timestamp; re-encode the video (e.g. ffmpeg -i IN OUT.mp4)", "corrupt")
        return float(stamp * frame.time_base) - self.info.origin

    def frame_end(self, frame: Any, time: float) -> float:
        duration = float(frame.duration * frame.time_base) if frame.duration else self.info.frame_interval
        return time + duration

    def frames_at(self, targets: list[float]) -> tuple[list[Any], list[float]]:
        """The frame shown at each of ``targets`` (ascending) and its timestamp."""
        chosen: list[Any] = []
        chosen_times: list[float] = []
        k, attempt, reposition = 0, 0, True
        positioned_for = -1  # the target the decoder was last positioned for: never sought ahead to twice
        frames: Iterator[Any] = iter(())
        at_start = first = False
        previous: Any = None
        previous_time = 0.0
        while k < len(targets):
            if reposition:
                frames, at_start = self.position(targets[k], attempt)
                previous, first, reposition, positioned_for = None, True, False, k
            try:
                frame = next(frames)
            except StopIteration:
                if first and not at_start:  # the seek yielded nothing (landed past the end): back off
                    attempt, reposition = attempt + 1, True
                    self.stats["backoffs"] += 1
                    continue
                if previous is None:
                    raise VideoReadError(f"{self.path}: no decodable frame at or after {targets[k]:.3f} s", "decode failed")
                end = self.frame_end(previous, previous_time)
                while k < len(targets) and targets[k] < end + _EPS:  # the last frame is shown until its end
                    chosen.append(previous)
                    chosen_times.append(previous_time)
                    k += 1
                if k < len(targets):
                    raise VideoReadError(
                        f"{self.path}: no frame at {targets[k]:.3f} s: decoding ended at {end:.3f} s; "
                        f"{self.info.describe_end()}", "clip past video end")
                break
            self.stats["decoded"] += 1
            time = self.frame_time(frame)
            if first:
                first = False
                late = time > targets[k] + _EPS or bool(getattr(frame, "is_corrupt", False))
                if late and not at_start:  # never accept a first frame later than the target
                    attempt, reposition = attempt + 1, True
                    self.stats["backoffs"] += 1
                    continue
            while k < len(targets) and time > targets[k] + _EPS:
                # before the first frame of the file only the first frame can be shown
                chosen.append(previous if previous is not None else frame)
                chosen_times.append(previous_time if previous is not None else time)
                k += 1
            if k == len(targets):
                break
            previous, previous_time = frame, time
            if k > positioned_for and self.worth_seeking(time, targets[k]):
                attempt, reposition = 0, True
        return chosen, chosen_times


def _decode(path: Path, info: VideoInfo, times: Sequence[float]) -> tuple[list[Any], list[float], dict[str, int]]:
    """Frames shown at ``times`` (any order, repeats allowed), their timestamps and the decoding stats."""
    if not len(times):
        raise ValueError("times must hold at least one timestamp")
    order = sorted(range(len(times)), key=times.__getitem__)
    decoder = _Decoder(path, info)
    try:
        frames, frame_times = decoder.frames_at([float(times[i]) for i in order])
    except av.error.FFmpegError as err:
        raise VideoReadError(f"{path}: decoding failed: {err}", "decode failed") from err
    finally:
        decoder.close()
    out: list[Any] = [None] * len(times)
    out_times = [0.0] * len(times)
    for position, index in enumerate(order):
        out[index], out_times[index] = frames[position], frame_times[position]
    return out, out_times, decoder.stats


def _rotation_turns(frame: Any, rotate: bool) -> int:
    """Counter-clockwise quarter turns FFmpeg applies to ``frame`` for display (0 when ``rotate`` is off)."""
    return int(round((frame.rotation or 0) / 90.0)) % 4 if rotate else 0


def _to_rgb(frames: list[Any], size: Optional[tuple[int, int]], path: Path, rotate: bool = True) -> np.ndarray:
    """Convert, resize (``size`` as displayed) and rotate the chosen frames, once each even when several
    timestamps share one."""
    converted: dict[int, np.ndarray] = {}
    out = []
    try:
        for frame in frames:
            key = id(frame)
            if key not in converted:
                turns = _rotation_turns(frame, rotate)
                if size is None:
                    array = frame.to_ndarray(format="rgb24")
                else:
                    height, width = size if turns % 2 == 0 else size[::-1]
                    array = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
                converted[key] = np.ascontiguousarray(np.rot90(array, turns)) if turns else array
            out.append(converted[key])
        return np.stack(out)
    except (av.error.FFmpegError, ValueError) as err:
        raise VideoReadError(f"{path}: cannot convert frames to RGB: {err}", "decode failed") from err


def decode_frames(
    path: str | Path,
    times: Sequence[float],
    size: Optional[tuple[int, int]] = None,
    stats: Optional[dict[str, int]] = None,
    rotate: bool = True,
) -> np.ndarray:
    """The frames shown at ``times`` (seconds from the first frame) as uint8 ``(T, H, W, 3)`` RGB.

    The frame shown at ``t`` is the last one whose timestamp is ``<= t`` (see :class:`_Decoder` for how
    seeking stays exact); a time past the last frame's end is an error, never a repeat of the last frame.
    ``size = (H, W)`` (as displayed) resizes while converting (FFmpeg's area filter); ``rotate`` applies the
    rotation FFmpeg displays the video with. ``stats`` receives ``decoded`` (frames), ``seeks``,
    ``backoffs`` (seeks that landed late, repeated further back) and ``restarts`` (decodes from the start).
    """
    path = Path(path)
    frames, _, counts = _decode(path, probe_video(path), times)
    out = _to_rgb(frames, size, path, rotate)
    if stats is not None:
        stats.update(counts)
    return out


@dataclass
class Clip:
    """One read clip: frames uint8 ``(T, H, W, 3)``, the asked ``times``, the ``frame_times`` of the frames
    returned, the clip bounds, the video's probe and the decoding stats."""

    frames: np.ndarray
    times: list[float]
    frame_times: list[float]
    start: float
    end: float
    info: VideoInfo
    stats: dict[str, int]


def read_clip_with_times(
    path: str | Path,
    num_frames: int,
    sampling: str = "uniform",
    fps: Optional[float] = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
    short_side: Optional[int] = None,
    random: bool = False,
    generator: Optional[torch.Generator] = None,
    clamp_end: bool = False,
    rotate: bool = True,
) -> Clip:
    """:func:`read_clip`, also returning what was asked and what was decoded (``scripts/check_dataset.py``)."""
    path = Path(path)
    info = probe_video(path)
    clip_start, clip_end = clip_bounds(info, start, end, clamp_end)
    times = sample_times(clip_start, clip_end, num_frames, sampling, fps, random, generator)
    frames, frame_times, stats = _decode(path, info, times)
    size = None
    if short_side is not None:
        size = resize_for_short_side(*info.display_size(rotate), short_side)
    return Clip(_to_rgb(frames, size, path, rotate), times, frame_times, clip_start, clip_end, info, stats)


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
    clamp_end: bool = False,
    rotate: bool = True,
) -> np.ndarray:
    """Sample, decode and resize (shorter side to ``short_side``) one clip: uint8 ``(T, H, W, 3)``.

    The clip is checked against where the video's frames end (:func:`clip_bounds`); frames are rotated as
    FFmpeg displays them unless ``rotate`` is false."""
    return read_clip_with_times(path, num_frames, sampling, fps, start, end, short_side, random, generator,
                                clamp_end, rotate).frames


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
