"""What a video file really holds, measured once per file: where its video frames end, how many there are,
how far apart its keyframes are, and how it should be rotated for display.

Container headers are not trusted for the video's length: an MKV with 6 s of audio and 3 s of video says 6 s,
a truncated MKV keeps the 8 s its header was written with, and a WebM written to a pipe says nothing at all.
:func:`probe_video` therefore reads every packet of the video stream (demuxing only, no decoding: a few
milliseconds per minute of video) and takes the end of the last frame as the video's end. The result is cached
in-process by ``(path, size, mtime)``, so a file is probed once per process however many clips read it.
"""

from __future__ import annotations

import bisect
import statistics
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import av

from hierarchicalvlm.data.annotations import BadSampleError

PROBE_CACHE_SIZE = 4096  # files whose probe is kept per process
MAX_KEYFRAMES_KEPT = 20_000  # keyframe times are kept up to this many (all-intra videos need none of them)


class VideoReadError(BadSampleError):
    """A video file is missing, empty, corrupt or does not contain the requested clip.

    ``kind`` names the problem for summaries (``scripts/check_dataset.py`` counts problems per kind)."""

    def __init__(self, message: str, kind: str = "unreadable") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # keep ``kind`` across loader worker processes
        return (type(self), (str(self), self.kind))


@dataclass(frozen=True)
class VideoInfo:
    """The facts of one video stream, measured from its packets.

    Times are seconds from the stream's first frame (``origin`` is that frame's time in the container).
    ``duration`` is where the video frames end (last frame's timestamp plus its duration), not the container's
    length, which ``container_duration`` keeps (``None`` when the header has none). ``width``/``height`` are
    the stored size; ``rotation`` is the counter-clockwise rotation (degrees, a multiple of 90) FFmpeg applies
    for display. ``keyframe_interval`` is the longest gap between keyframes (the duration for a single
    keyframe), ``max_frame_gap`` the longest gap between consecutive frames; ``keyframes`` the keyframe times
    (``None`` when there are too many to keep: every frame or nearly is one). ``damage`` says why demuxing
    stopped early (``None`` for a file read to its end)."""

    path: str
    duration: float
    fps: Optional[float]
    num_frames: Optional[int]
    width: int
    height: int
    container_duration: Optional[float] = None
    origin: float = 0.0
    rotation: int = 0
    keyframe_interval: Optional[float] = None
    max_frame_gap: Optional[float] = None
    keyframes: Optional[tuple[float, ...]] = None
    damage: Optional[str] = None

    @property
    def frame_interval(self) -> float:
        """Typical time between frames (1 / fps), for tolerances."""
        return 1.0 / self.fps if self.fps else (self.max_frame_gap or 0.04)

    def display_size(self, rotate: bool = True) -> tuple[int, int]:
        """``(height, width)`` as displayed (rotation applied unless ``rotate`` is false)."""
        if rotate and self.rotation % 180:
            return self.width, self.height
        return self.height, self.width

    def keyframe_before(self, t: float) -> Optional[float]:
        """Time of the last keyframe at or before ``t`` (``None`` when unknown)."""
        if not self.keyframes:
            return None
        index = bisect.bisect_right(self.keyframes, t + 1e-6) - 1
        return self.keyframes[max(0, index)]

    def describe_end(self) -> str:
        """"the video ends at 5.64 s, the container says 8 s" (the second half only when they differ)."""
        text = f"the video ends at {self.duration:.3f} s"
        if self.container_duration is not None and abs(self.container_duration - self.duration) > self.frame_interval:
            text += f", the container says {self.container_duration:.3f} s"
        return text


def open_video(path: str | Path) -> tuple[Any, Any]:
    """Open ``path`` and return ``(container, video_stream)``, or raise a VideoReadError naming it."""
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"{path}: video file not found", "missing")
    if path.is_dir():
        raise VideoReadError(f"{path}: is a directory, not a video file", "missing")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: video file is empty (0 bytes)", "empty")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoReadError(f"{path}: cannot open as a video (corrupt or unsupported format): {err}", "corrupt") from err
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{path}: contains no video stream", "no video stream")
    return container, container.streams.video[0]


def _first_frame_rotation(stream: Any, packets: list[Any]) -> int:
    """Rotation of the first decodable frame of ``packets`` (decodes only until one frame comes out)."""
    codec = stream.codec_context
    try:
        for packet in packets:
            for frame in codec.decode(packet):
                return int(round((frame.rotation or 0) / 90.0)) * 90 % 360
    except av.error.FFmpegError:
        pass  # rotation stays unknown (0); decoding reports the error itself
    return 0


def _scan(container: Any, stream: Any, path: Path) -> VideoInfo:
    """Demux every packet of the video stream (no decoding) and measure the stream from them."""
    times: list[int] = []
    keys: list[int] = []
    durations: list[int] = []
    head: list[Any] = []  # the first packets, decoded later just far enough to read the rotation
    damage = None
    corrupt = 0
    try:
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None or packet.size == 0 or packet.is_discard:
                continue
            if packet.is_corrupt:  # e.g. the partial last packet of a truncated file: not a frame to count
                corrupt += 1
                continue
            times.append(stamp)
            durations.append(packet.duration or 0)
            if packet.is_keyframe:
                keys.append(stamp)
            if len(head) < 16:
                head.append(packet)
    except av.error.FFmpegError as err:
        if not times:
            raise VideoReadError(f"{path}: cannot read any video packet: {err}", "corrupt") from err
        damage = f"demuxing stopped with an error ({err})"
    if not times:
        raise VideoReadError(f"{path}: video has zero duration (no frames)", "no frames")
    if corrupt:
        damage = f"{corrupt} corrupt video packet(s) (truncated or damaged file)"
    if stream.frames and stream.frames > len(times) + corrupt:
        damage = f"the header lists {stream.frames} frames but only {len(times)} could be read (truncated file?)"
    base = stream.time_base
    origin_ticks = stream.start_time if stream.start_time is not None else min(times)
    origin_ticks = min(origin_ticks, min(times))
    ordered = sorted(times)
    gaps = [b - a for a, b in zip(ordered, ordered[1:]) if b > a]
    typical = statistics.median(gaps) if gaps else 0
    last = ordered[-1]
    last_duration = max(d for t, d in zip(times, durations) if t == last) or typical
    end = float((last + last_duration - origin_ticks) * base)
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else (1.0 / float(typical * base) if typical else None)
    if end <= 0:
        end = 1.0 / fps if fps else 0.0
    if end <= 0:
        raise VideoReadError(f"{path}: video has zero duration (no frames)", "no frames")
    key_times = sorted({float((k - origin_ticks) * base) for k in keys}) or [0.0]
    key_gaps = [b - a for a, b in zip(key_times, key_times[1:])] + [end - key_times[-1]]
    if key_times[0] > 0:
        key_gaps.append(key_times[0])
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise VideoReadError(f"{path}: video stream has no frame size (corrupt header?)", "corrupt")
    container_duration = container.duration / av.time_base if container.duration else None
    return VideoInfo(
        path=str(path),
        duration=end,
        fps=fps,
        num_frames=len(times),
        width=width,
        height=height,
        container_duration=container_duration,
        origin=float(origin_ticks * base),
        rotation=_first_frame_rotation(stream, head),
        keyframe_interval=max(key_gaps),
        max_frame_gap=float(max(max(gaps, default=0), last_duration) * base),
        keyframes=tuple(key_times) if len(key_times) <= MAX_KEYFRAMES_KEPT else None,
        damage=damage,
    )


_cache: OrderedDict[tuple[str, int, int], VideoInfo] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(path: Path) -> Optional[tuple[str, int, int]]:
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def probe_video(path: str | Path) -> VideoInfo:
    """The stream facts of a video (see :class:`VideoInfo`), measured once per ``(path, size, mtime)``."""
    path = Path(path)
    key = _cache_key(path)
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    container, stream = open_video(path)
    try:
        info = _scan(container, stream, path)
    finally:
        container.close()
    if key is not None:
        with _cache_lock:
            _cache[key] = info
            while len(_cache) > PROBE_CACHE_SIZE:
                _cache.popitem(last=False)
    return info


def clear_probe_cache() -> None:
    """Forget every probed file (tests; long-lived processes whose files changed in place within one mtime tick)."""
    with _cache_lock:
        _cache.clear()
