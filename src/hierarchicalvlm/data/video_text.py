"""``data=video_text``: train on a folder of your own videos described by an annotation file.

Each sample decodes ``num_frames`` frames of its clip (see :mod:`hierarchicalvlm.data.video_io`):
training samples get random temporal jitter and a random crop, validation and test samples are
deterministic (segment centres, centre crop). An optional ``cache_dir`` keeps the decoded,
resized frames as uint8 ``.npy`` files so later epochs skip decoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from hierarchicalvlm.utils.checks import check_positive
from hierarchicalvlm.data.annotations import AnnotatedDataModule, Annotation, BadSampleError
from hierarchicalvlm.data.video_io import SAMPLING, crop_frames, read_clip, to_float_tensor

log = logging.getLogger(__name__)

# Part of every cache file's name: bump it when decoding changes what a clip holds, so no stale entry is read
# (2: clips end at the video stream's last frame, exact seeking on every container, rotation applied).
CACHE_FORMAT = 2


def as_frame_size(frame_size: int | Sequence[int]) -> tuple[int, int]:
    """``64`` or ``[64, 96]`` -> ``(H, W)``."""
    if isinstance(frame_size, int):
        size = (frame_size, frame_size)
    else:
        size = tuple(int(s) for s in frame_size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"frame_size must be a positive int or [height, width], got {frame_size!r}")
    return size  # type: ignore[return-value]


class VideoClipLoader:
    """Turns an annotation row into float frames ``(T, 3, H, W)``; picklable for loader workers.

    With ``cache_dir`` every clip is read once at its deterministic timestamps and stored resized
    (shorter side ``short_side``) but uncropped; training then keeps its random crop but loses the
    temporal jitter (the timestamps are the cached ones). ``clamp_end`` cuts clips that end past the
    video's last frame at that frame (otherwise they are bad samples); ``rotate`` applies rotation
    metadata as FFmpeg displays it.
    """

    def __init__(
        self,
        video_root: Optional[str | Path],
        num_frames: int,
        frame_size: tuple[int, int],
        short_side: int,
        sampling: str,
        fps: Optional[float],
        random_train_sampling: bool,
        cache_dir: Optional[str | Path],
        clamp_end: bool = False,
        rotate: bool = True,
    ) -> None:
        self.video_root = video_root
        self.clamp_end = clamp_end
        self.rotate = rotate
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.short_side = short_side
        self.sampling = sampling
        self.fps = fps
        self.random_train_sampling = random_train_sampling
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None

    def path(self, row: Annotation) -> Path:
        try:
            return row.resolve(self.video_root)
        except ValueError as err:
            raise BadSampleError(str(err)) from err

    def read(self, row: Annotation, random: bool) -> np.ndarray:
        """Decode and resize the row's clip: uint8 ``(T, h, w, 3)``."""
        return read_clip(
            self.path(row),
            self.num_frames,
            self.sampling,
            self.fps,
            row.start,
            row.end,
            short_side=self.short_side,
            random=random,
            clamp_end=self.clamp_end,
            rotate=self.rotate,
        )

    def cache_path(self, row: Annotation) -> Path:
        """Cache file of the row's clip; its name changes when the video file or any sampling setting does."""
        assert self.cache_dir is not None
        path = self.path(row)
        try:
            stat = path.stat()
        except OSError as err:
            raise BadSampleError(f"{path}: video file not found ({err.strerror})") from err
        key = json.dumps(
            [str(path.resolve()), stat.st_size, stat.st_mtime_ns, row.start, row.end,
             self.num_frames, self.sampling, self.fps if self.sampling == "fps" else None, self.short_side,
             self.clamp_end, self.rotate, CACHE_FORMAT]
        )
        digest = hashlib.sha1(key.encode()).hexdigest()[:20]
        return self.cache_dir / f"{path.stem}-{digest}.npy"

    def read_cached(self, row: Annotation) -> np.ndarray:
        """The row's deterministic clip from the cache, decoding and storing it on a miss."""
        target = self.cache_path(row)
        if target.is_file():
            try:
                return np.load(target, allow_pickle=False)
            except (OSError, ValueError, EOFError) as err:
                log.warning("unreadable cache file %s (%s); decoding the video again", target, err)
        frames = self.read(row, random=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, frames, allow_pickle=False)
            os.replace(tmp, target)  # atomic: concurrent workers never see half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return frames

    def __call__(self, row: Annotation, train: bool) -> torch.Tensor:
        random = train and self.random_train_sampling
        frames = self.read_cached(row) if self.cache_dir is not None else self.read(row, random)
        return to_float_tensor(crop_frames(frames, self.frame_size, random=random))


class VideoTextFolderDataModule(AnnotatedDataModule):
    """Videos under ``video_root`` + an annotation file (see :mod:`hierarchicalvlm.data.annotations`).

    ``sampling="uniform"`` reads ``num_frames`` frames spread over each clip; ``sampling="fps"``
    reads ``fps`` frames per second, at most ``num_frames`` (shorter clips give shorter,
    zero-padded and masked sequences). ``clamp_to_video_end`` cuts clips whose ``end`` passes the video's
    last frame at that frame (default: such a clip is a bad sample, named with both times);
    ``apply_rotation`` rotates frames as FFmpeg displays them (false: as stored).
    ``shared``: the annotation, split, bad-sample and loader options of :class:`AnnotatedDataModule`.
    """

    def __init__(
        self,
        annotations: Optional[str] = None,
        video_root: Optional[str] = None,
        num_frames: int = 8,
        frame_size: int | Sequence[int] = 64,
        short_side: Optional[int] = None,
        sampling: str = "uniform",
        fps: float = 1.0,
        random_train_sampling: bool = True,
        cache_dir: Optional[str] = None,
        clamp_to_video_end: bool = False,
        apply_rotation: bool = True,
        **shared: Any,
    ) -> None:
        super().__init__(annotations, **shared)
        if sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING)}, got {sampling!r}")
        check_positive(num_frames=num_frames, fps=fps)
        self.frame_size = as_frame_size(frame_size)
        short_side = max(self.frame_size) if short_side is None else short_side
        if short_side < max(self.frame_size):
            raise ValueError(
                f"short_side ({short_side}) must be >= the largest side of frame_size {self.frame_size} "
                "so the crop fits; leave it null to use that size"
            )
        if video_root is not None and not Path(video_root).expanduser().is_dir():
            raise ValueError(f"video_root {video_root!r} is not a directory; set data.video_root to your video folder")
        self.loader = VideoClipLoader(
            video_root, num_frames, self.frame_size, short_side, sampling, fps, random_train_sampling, cache_dir,
            clamp_end=clamp_to_video_end, rotate=apply_rotation,
        )
        if cache_dir and random_train_sampling:
            log.info("cache_dir is set: training reuses the cached timestamps (random crop only, no temporal jitter)")

    def sample_path(self, row: Annotation) -> Path:
        return self.loader.path(row)

    def frame_loader(self) -> Callable[[Annotation, bool], Any]:
        return self.loader

    def input_spec(self) -> dict[str, Any]:
        return {"kind": "pixels", "frame_shape": (3, *self.frame_size), "max_frames": self.loader.num_frames}
