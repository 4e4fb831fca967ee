"""Videos whose every frame carries its own number, for checking that a decoder returns the frame asked for.

Frame ``k`` is a 4 x 4 grid of black/white cells spelling ``k`` in binary (16 bits, cell ``i`` in reading
order is bit ``i``); the cells are large enough (a quarter of the side each) to survive lossy codecs, chroma
subsampling and resizing. :func:`write_stamped_video` writes such videos in the awkward shapes real data comes
in — MPEG-TS, long keyframe intervals, audio longer than the video, rotation metadata, WebM written to a pipe —
and :func:`truncate_file` cuts one short. Used by the tests and ``scripts/bench_loader.py``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Optional

import av
import numpy as np

GRID = 4
BITS = GRID * GRID


def stamp_frames(num_frames: int, height: int = 32, width: int = 32, first: int = 0) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` frames numbered ``first .. first + T - 1`` (H and W multiples of 8)."""
    if first < 0 or first + num_frames > 2**BITS:
        raise ValueError(f"frame numbers must fit in {BITS} bits, got {first}..{first + num_frames - 1}")
    if height % (2 * GRID) or width % (2 * GRID):
        raise ValueError(f"height and width must be multiples of {2 * GRID}, got {height}x{width}")
    numbers = np.arange(first, first + num_frames)
    bits = (numbers[:, None] >> np.arange(BITS)[None]) & 1  # (T, 16)
    cells = (bits.reshape(num_frames, GRID, GRID) * 255).astype(np.uint8)
    frames = cells.repeat(height // GRID, axis=1).repeat(width // GRID, axis=2)
    return np.repeat(frames[..., None], 3, axis=3)


def read_stamps(frames: np.ndarray) -> list[int]:
    """The frame numbers stamped into uint8 ``(T, H, W, 3)`` frames (as displayed, any size)."""
    frames = np.asarray(frames)
    count, height, width = frames.shape[:3]
    ch, cw = height / GRID, width / GRID
    numbers = np.zeros(count, dtype=np.int64)
    for row in range(GRID):
        for col in range(GRID):  # the middle half of each cell: away from edges blurred by codecs and resizing
            y0, y1 = int(row * ch + ch / 4), max(int(row * ch + ch / 4) + 1, int(row * ch + 3 * ch / 4))
            x0, x1 = int(col * cw + cw / 4), max(int(col * cw + cw / 4) + 1, int(col * cw + 3 * cw / 4))
            bit = frames[:, y0:y1, x0:x1].reshape(count, -1).mean(axis=1) > 127
            numbers |= bit.astype(np.int64) << (row * GRID + col)
    return numbers.tolist()


class _PipeWriter:
    """A write-only, non-seekable file: what a muxer writing to ``ffmpeg ... pipe:`` sees."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def write(self, data: Any) -> int:
        return self.handle.write(bytes(data))


def _add_audio(container: Any, seconds: float, frames: list[Any]) -> Any:
    """An AAC (or Opus in WebM) mono stream of ``seconds`` of silence, encoded into ``frames`` (packets)."""
    codec = "libopus" if container.format.name == "webm" else "aac"
    rate = 48000 if codec == "libopus" else 8000
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "mono"
    samples, chunk, pts = int(seconds * rate), 960 if codec == "libopus" else 1024, 0
    while pts < samples:
        frame = av.AudioFrame.from_ndarray(np.zeros((1, chunk), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, pts
        frames.extend(stream.encode(frame))
        pts += chunk
    frames.extend(stream.encode())
    return stream


def write_stamped_video(
    path: str | Path,
    num_frames: int,
    fps: int | Fraction = 24,
    size: tuple[int, int] = (32, 32),
    codec: str = "libx264",
    gop: Optional[int] = None,
    options: Optional[dict[str, str]] = None,
    container_options: Optional[dict[str, str]] = None,
    rotation: int = 0,
    audio_seconds: Optional[float] = None,
    start_frame: int = 0,
    pipe: bool = False,
    noise: int = 0,
) -> Path:
    """Write ``num_frames`` numbered frames (see :func:`stamp_frames`) to ``path``; the container follows the suffix.

    ``gop``: keyframe interval in frames (``None``: the encoder's default); ``rotation``: display rotation
    metadata (counter-clockwise degrees, as PyAV's ``frame.rotation``); ``audio_seconds``: add a silent audio
    stream of that length; ``start_frame``: timestamps start at ``start_frame / fps`` (a non-zero start time);
    ``pipe``: write through a non-seekable stream, so the muxer cannot go back to write a duration or an index;
    ``noise``: add a random texture of this amplitude that slides one pixel per frame (detail and motion that cost
    the codec bits, like real footage; the stamp stays readable for amplitudes up to about 60).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = size
    frames = stamp_frames(num_frames, height, width)
    if noise:  # one random texture sliding one pixel per frame: motion a codec predicts, as in real footage
        texture = np.random.default_rng(0).integers(-noise, noise + 1, (height, width, 3), dtype=np.int16)
        moving = np.stack([np.roll(texture, index, axis=1) for index in range(num_frames)])
        frames = np.clip(frames.astype(np.int16) + moving, 0, 255).astype(np.uint8)
    handle = path.open("wb") if pipe else None
    format_name = {".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts", ".webm": "webm"}.get(path.suffix.lower())
    target: Any = _PipeWriter(handle) if handle else str(path)
    try:
        with av.open(target, "w", format=format_name, options=dict(container_options or {})) as container:
            stream = container.add_stream(codec, rate=fps)
            stream.height, stream.width = height, width
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            stream.options = {**({"g": str(gop)} if gop else {}),
                              **({"sc_threshold": "0"} if codec == "libx264" else {}), **(options or {})}
            if gop and codec == "libx264":
                stream.options = {**stream.options, "keyint_min": str(gop)}
            if rotation:
                stream.set_display_rotation(rotation)
            audio_packets: list[Any] = []
            if audio_seconds:
                _add_audio(container, audio_seconds, audio_packets)
            time_base = Fraction(1) / Fraction(fps)
            for index, array in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                frame.pts, frame.time_base = start_frame + index, time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            for packet in audio_packets:
                container.mux(packet)
    finally:
        if handle:
            handle.close()
    return path


def truncate_file(source: str | Path, target: str | Path, keep: float) -> Path:
    """Copy the first ``keep`` fraction of ``source``'s bytes to ``target`` (a download cut short)."""
    data = Path(source).read_bytes()
    target = Path(target)
    target.write_bytes(data[: int(len(data) * keep)])
    return target
