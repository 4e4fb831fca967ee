"""``data=features``: train on precomputed per-frame features, one file per video.

A feature file holds a ``(frames, feature_dim)`` array as ``.npy``, ``.pt`` (a tensor, or a dict
with one tensor or a ``"features"`` entry) or ``.safetensors`` (one tensor, or a ``"features"``
entry). The annotation format is the one of ``data=video_text``: the ``video`` column names the
video, and its feature file is found under ``feature_root`` with the video's suffix replaced
(``cooking/v1.mp4`` -> ``cooking/v1.npy``), or named directly (``cooking/v1.npy``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from hierarchicalvlm.utils.checks import check_positive
from hierarchicalvlm.data.annotations import AnnotatedDataModule, Annotation, BadSampleError
from hierarchicalvlm.data.video_io import segment_positions

log = logging.getLogger(__name__)

FEATURE_EXTENSIONS = (".npy", ".pt", ".safetensors")


def feature_relative_path(video: str) -> Path:
    """Where a video's features live relative to the feature root: the video's path, made relative
    if absolute (``/data/clips/v1.mp4`` -> ``data/clips/v1.mp4``), suffix not yet replaced."""
    path = Path(video).expanduser()
    return Path(*path.parts[1:]) if path.is_absolute() else path


def feature_path(row: Annotation, feature_root: Optional[str | Path]) -> Path:
    """The feature file of ``row``: the ``video`` path itself if it has a feature suffix, else the
    single existing ``feature_root / <video path without suffix>.{npy,pt,safetensors}``."""
    if Path(row.video).suffix.lower() in FEATURE_EXTENSIONS:
        try:
            return row.resolve(feature_root)
        except ValueError as err:
            raise BadSampleError(str(err)) from err
    if feature_root is None:
        raise BadSampleError(f"{row.where}: cannot locate the features of {row.video!r}: set data.feature_root")
    base = Path(feature_root).expanduser() / feature_relative_path(row.video)
    candidates = list(dict.fromkeys([base.with_suffix(ext) for ext in FEATURE_EXTENSIONS]
                                    + [base.parent / (base.name + ext) for ext in FEATURE_EXTENSIONS]))
    existing = [c for c in candidates if c.is_file()]
    if len(existing) > 1:
        raise BadSampleError(f"several feature files for video {row.video!r}: {', '.join(map(str, existing))}; keep one")
    if not existing:
        looked = " / ".join([str(base.with_suffix(FEATURE_EXTENSIONS[0]))] + list(FEATURE_EXTENSIONS[1:]))
        raise BadSampleError(f"no feature file for video {row.video!r}: looked for {looked}")
    return existing[0]


def _pick_tensor(obj: Any, path: Path) -> Any:
    """The feature array inside a loaded ``.pt``/``.safetensors`` object."""
    if isinstance(obj, dict):
        if "features" in obj:
            return obj["features"]
        if len(obj) == 1:
            return next(iter(obj.values()))
        raise BadSampleError(f"{path}: holds {sorted(obj)}; store one tensor, or name the features 'features'")
    return obj


def open_feature_file(path: str | Path) -> np.ndarray | torch.Tensor:
    """Load a feature file without checking its shape (``.npy`` is memory-mapped, so picking a few
    rows of a long video reads only those rows)."""
    path = Path(path)
    if not path.is_file():
        raise BadSampleError(f"{path}: feature file not found")
    if path.stat().st_size == 0:
        raise BadSampleError(f"{path}: feature file is empty (0 bytes)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".pt":
            return _pick_tensor(torch.load(path, map_location="cpu", weights_only=True), path)
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return _pick_tensor(load_file(str(path)), path)
    except BadSampleError:
        raise
    except Exception as err:  # each format raises its own types for a corrupt file
        raise BadSampleError(f"{path}: cannot read feature file ({type(err).__name__}: {err})") from err
    raise BadSampleError(f"{path}: unknown feature format {suffix!r}; use one of {', '.join(FEATURE_EXTENSIONS)}")


def check_feature_shape(array: Any, path: str | Path, feature_dim: Optional[int]) -> None:
    """Raise a BadSampleError naming ``path`` unless ``array`` is a non-empty ``(frames, feature_dim)`` array."""
    if not isinstance(array, (np.ndarray, torch.Tensor)):
        raise BadSampleError(f"{path}: expected an array of shape (frames, {feature_dim or 'feature_dim'}), "
                             f"got {type(array).__name__}")
    shape = tuple(array.shape)
    expected = f"(frames, {feature_dim})" if feature_dim else "(frames, feature_dim)"
    if len(shape) != 2 or shape[0] == 0 or (feature_dim is not None and shape[1] != feature_dim):
        raise BadSampleError(f"{path}: features have shape {shape}, expected {expected} with frames >= 1")
    kind = array.dtype.kind if isinstance(array, np.ndarray) else ("f" if array.is_floating_point() else "i")
    if kind not in "fiu":
        raise BadSampleError(f"{path}: features must be numbers, got dtype {array.dtype}")


def clip_rows(num_rows: int, start: Optional[float], end: Optional[float], feature_fps: Optional[float],
              path: Path, clamp_end: bool = False) -> tuple[int, int]:
    """Rows ``[first, last)`` of a ``num_rows``-row feature file that cover the clip ``[start, end)`` seconds.

    As for videos, a clip that ends past the last row (by more than one row: rounding) is an error unless
    ``clamp_end`` asks to cut it there; rows are never repeated."""
    if start is None and end is None:
        return 0, num_rows
    assert feature_fps is not None
    if end is not None and end * feature_fps > num_rows + 1 + 1e-6 and not clamp_end:
        raise BadSampleError(
            f"{path}: clip end {end:g} s is past the features' end ({num_rows} rows at {feature_fps:g} rows/s = "
            f"{num_rows / feature_fps:g} s); fix the annotation's end, or set data.clamp_to_video_end=true to cut "
            "clips at the last row")
    first = int(math.floor((start or 0.0) * feature_fps))
    last = num_rows if end is None else min(num_rows, max(first + 1, int(math.ceil(end * feature_fps))))
    if first >= num_rows:
        raise BadSampleError(
            f"{path}: clip start {start:g} s is past the features' end ({num_rows} rows at {feature_fps:g} rows/s)"
        )
    return first, last


class FeatureClipLoader:
    """Turns an annotation row into float features ``(T, F)``; picklable for loader workers."""

    def __init__(self, feature_root: Optional[str | Path], feature_dim: Optional[int], max_frames: Optional[int],
                 feature_fps: Optional[float], random_train_sampling: bool, clamp_end: bool = False) -> None:
        self.feature_root = feature_root
        self.clamp_end = clamp_end
        self.feature_dim = feature_dim
        self.max_frames = max_frames
        self.feature_fps = feature_fps
        self.random_train_sampling = random_train_sampling

    def rows_of(self, row: Annotation) -> tuple[Any, int, int]:
        """The file's array (checked) and the clip's row range."""
        path = feature_path(row, self.feature_root)
        array = open_feature_file(path)
        check_feature_shape(array, path, self.feature_dim)
        first, last = clip_rows(array.shape[0], row.start, row.end, self.feature_fps, path, self.clamp_end)
        return array, first, last

    def __call__(self, row: Annotation, train: bool) -> torch.Tensor:
        array, first, last = self.rows_of(row)
        count = last - first
        if self.max_frames is not None and count > self.max_frames:
            positions = segment_positions(self.max_frames, random=train and self.random_train_sampling)
            index = [first + min(count - 1, int(p * count)) for p in positions]
        else:
            index = list(range(first, last))
        if isinstance(array, np.ndarray):  # numpy: no torch thread start-up per sample
            rows = np.ascontiguousarray(array[index], dtype=np.float32)
            finite = bool(np.isfinite(rows).all())
            features = torch.from_numpy(rows)
        else:
            features = array[index].float()
            finite = bool(torch.isfinite(features).all())
        if not finite:
            raise BadSampleError(f"{feature_path(row, self.feature_root)}: features contain NaN or infinite values")
        return features


class FeatureDataModule(AnnotatedDataModule):
    """Precomputed features under ``feature_root`` + an annotation file.

    ``feature_dim`` is read from the first training file when left null; every file must match
    it. ``max_frames`` subsamples longer videos uniformly (random jitter for training); when null
    it is set to the longest clip of the data (found by reading every file once).
    ``feature_fps`` (rows per second) is needed only when annotations have ``start``/``end``;
    ``clamp_to_video_end`` cuts clips whose ``end`` passes the last row there (default: a bad sample).
    ``shared``: the annotation, split, bad-sample and loader options of :class:`AnnotatedDataModule`.
    """

    def __init__(
        self,
        annotations: Optional[str] = None,
        feature_root: Optional[str] = None,
        feature_dim: Optional[int] = None,
        max_frames: Optional[int] = 64,
        feature_fps: Optional[float] = None,
        random_train_sampling: bool = True,
        clamp_to_video_end: bool = False,
        **shared: Any,
    ) -> None:
        super().__init__(annotations, **shared)
        if feature_dim is not None:
            check_positive(feature_dim=feature_dim)
        if max_frames is not None:
            check_positive(max_frames=max_frames)
        if feature_fps is not None:
            check_positive(feature_fps=feature_fps)
        if feature_root is not None and not Path(feature_root).expanduser().is_dir():
            raise ValueError(f"feature_root {feature_root!r} is not a directory; set data.feature_root to your feature folder")
        self.loader = FeatureClipLoader(feature_root, feature_dim, max_frames, feature_fps, random_train_sampling,
                                        clamp_to_video_end)

    def sample_path(self, row: Annotation) -> Path:
        return feature_path(row, self.loader.feature_root)

    def frame_loader(self) -> Callable[[Annotation, bool], Any]:
        return self.loader

    def prepare_rows(self, rows: dict[str, list[Annotation]]) -> None:
        """Check clip bounds can be honoured, infer ``feature_dim`` and, if unset, ``max_frames``."""
        everything = [r for split_rows in rows.values() for r in split_rows]
        clipped = [r for r in everything if r.start is not None or r.end is not None]
        if clipped and self.loader.feature_fps is None:
            raise ValueError(
                f"{clipped[0].where}: annotations have start/end but data.feature_fps is not set; "
                "set it to the number of feature rows per second of video"
            )
        if self.loader.feature_dim is None:
            self.loader.feature_dim = self._infer_feature_dim(rows["train"])
        if self.loader.max_frames is None:
            log.info("max_frames is null: reading every feature file once to find the longest clip")
            lengths = []
            for row in everything:
                try:
                    _, first, last = self.loader.rows_of(row)
                except BadSampleError:
                    if self.on_bad_sample == "fail":
                        raise
                    continue
                lengths.append(last - first)
            self.loader.max_frames = max(lengths, default=1)

    def _infer_feature_dim(self, train_rows: list[Annotation], sample: int = 16) -> int:
        """The most common feature size among the first ``sample`` readable training files."""
        dims: list[int] = []
        errors = []
        for row in train_rows:
            try:
                path = feature_path(row, self.loader.feature_root)
                array = open_feature_file(path)
                check_feature_shape(array, path, None)
            except BadSampleError as err:  # reported by the bad-sample policy when the sample is read
                errors.append(str(err))
                continue
            dims.append(int(array.shape[1]))
            if len(dims) == sample:
                break
        if not dims:
            raise BadSampleError("no readable training feature file to infer feature_dim from: " + "; ".join(errors[:5]))
        counts = Counter(dims)
        if len(counts) > 1:
            log.warning("training feature files disagree on feature_dim %s; using the most common, set "
                        "data.feature_dim to choose", dict(counts))
        return counts.most_common(1)[0][0]

    def input_spec(self) -> dict[str, Any]:
        assert self.loader.feature_dim is not None, "call setup() first"
        return {"kind": "features", "feature_dim": self.loader.feature_dim, "max_frames": self.loader.max_frames}
