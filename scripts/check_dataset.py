#!/usr/bin/env python
"""Check a video-language dataset before training on it; exit code 1 when anything is wrong.

Reads the annotations exactly as training does (same validation, same split), then opens every
video (or feature file) once and reports:

* counts per split: samples, distinct videos, total and mean clip duration;
* malformed annotation lines, missing / empty / unreadable / corrupt files, clips past the end of
  their video, feature files of the wrong shape or with NaNs;
* empty captions (a problem with ``--require-captions``, or when some rows have captions and
  others do not — usually a mistake).

Examples::

    python scripts/check_dataset.py --annotations data/ann.csv --video-root data/clips
    python scripts/check_dataset.py --annotations data/ann.csv --feature-root data/feats --feature-fps 1
    python scripts/check_dataset.py --annotations data/ann.csv --video-root data/clips --decode   # decode all
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from hierarchicalvlm.data.annotations import SPLITS, Annotation, AnnotationError, BadSampleError, load_split_annotations
from hierarchicalvlm.data.features import check_feature_shape, clip_rows, feature_path, open_feature_file
from hierarchicalvlm.data.video_io import clip_bounds, decode_frames, probe_video, sample_times


def check_video(row: Annotation, root: Optional[Path], decode_all: bool) -> tuple[float, Optional[str]]:
    """``(clip duration in seconds, problem or None)`` of one annotation row."""
    try:
        path = row.resolve(root)
        info = probe_video(path)
        start, end = clip_bounds(info, row.start, row.end)
        if decode_all and info.fps:
            times = sample_times(start, end, num_frames=max(1, int((end - start) * info.fps)), sampling="uniform")
        else:
            times = [start, (start + end) / 2]
        decode_frames(path, times, size=(8, 8))
        return end - start, None
    except (BadSampleError, ValueError) as err:
        return 0.0, str(err)


def check_features(row: Annotation, root: Optional[Path], feature_dim: Optional[int],
                   feature_fps: Optional[float]) -> tuple[float, Optional[str], Optional[int]]:
    """``(clip duration in rows or seconds, problem or None, feature size)`` of one annotation row."""
    try:
        path = feature_path(row, root)
        array = open_feature_file(path)
        check_feature_shape(array, path, feature_dim)
        if (row.start is not None or row.end is not None) and feature_fps is None:
            return 0.0, "row has start/end: pass --feature-fps (rows per second) to check it", int(array.shape[1])
        first, last = clip_rows(array.shape[0], row.start, row.end, feature_fps, path)
        if not np.isfinite(np.asarray(array[first:last], dtype=np.float64)).all():
            return 0.0, f"{path}: features contain NaN or infinite values", int(array.shape[1])
        rows = last - first
        return (rows / feature_fps if feature_fps else float(rows)), None, int(array.shape[1])
    except (BadSampleError, ValueError) as err:
        return 0.0, str(err), None


def caption_problems(rows: list[Annotation], require_captions: bool) -> list[tuple[str, int, str]]:
    empty = [r for r in rows if not r.caption]
    if not empty or (not require_captions and len(empty) == len(rows)):
        return []  # every row has a caption, or the data has none (e.g. QA only)
    return [(r.source, r.line, "empty caption") for r in empty]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", help="one annotation file (.csv/.tsv/.jsonl)")
    parser.add_argument("--train-annotations")
    parser.add_argument("--val-annotations")
    parser.add_argument("--test-annotations")
    parser.add_argument("--split-ratios", nargs=3, type=float, default=(0.8, 0.1, 0.1))
    parser.add_argument("--split-seed", type=int, default=0)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video-root", type=Path, help="check videos under this folder")
    source.add_argument("--feature-root", type=Path, help="check feature files under this folder")
    parser.add_argument("--feature-dim", type=int, help="expected feature size (default: the first file's)")
    parser.add_argument("--feature-fps", type=float, help="feature rows per second (for start/end)")
    parser.add_argument("--require-captions", action="store_true", help="every sample needs a caption")
    parser.add_argument("--decode", action="store_true", help="decode every frame of every clip (slow, thorough)")
    parser.add_argument("--workers", type=int, default=4, help="files checked in parallel")
    args = parser.parse_args(argv)

    try:
        splits = load_split_annotations(
            args.annotations, args.train_annotations, args.val_annotations, args.test_annotations,
            args.split_ratios, args.split_seed,
        )
    except (AnnotationError, ValueError, FileNotFoundError) as err:
        print(f"annotations rejected:\n{err}")
        return 1
    rows = [r for split in SPLITS for r in splits[split]]
    problems = caption_problems(rows, args.require_captions)

    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        if args.video_root is not None:
            results = list(pool.map(lambda r: check_video(r, args.video_root, args.decode), rows))
            unit = "s"
        else:
            if args.feature_dim is None:  # the most common size is the expected one
                checked = pool.map(lambda r: check_features(r, args.feature_root, None, args.feature_fps), rows)
                dims = Counter(dim for _, _, dim in checked if dim is not None)
                args.feature_dim = dims.most_common(1)[0][0] if dims else None
            checked = pool.map(lambda r: check_features(r, args.feature_root, args.feature_dim, args.feature_fps), rows)
            results = [(duration, problem) for duration, problem, _ in checked]
            unit = "s" if args.feature_fps else "rows"
    duration_of = {}
    for row, (duration, problem) in zip(rows, results):
        duration_of[id(row)] = duration
        if problem:
            problems.append((row.source, row.line, problem))

    print(f"| split | samples | videos | total ({unit}) | mean clip ({unit}) |")
    print("|---|---|---|---|---|")
    for split in SPLITS:
        split_rows = splits[split]
        total = sum(duration_of[id(r)] for r in split_rows)
        mean = total / len(split_rows) if split_rows else 0.0
        print(f"| {split} | {len(split_rows)} | {len({r.video for r in split_rows})} | {total:.1f} | {mean:.2f} |")
    empty_captions = sum(not r.caption for r in rows)
    print(f"\n{len(rows)} samples, {empty_captions} with an empty caption, "
          f"{sum(r.answer is not None for r in rows)} with a QA label")
    if args.feature_root is not None:
        print(f"feature_dim: {args.feature_dim}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for source, line, problem in sorted(problems):
            print(f"  {source} line {line}: {problem}")
        return 1
    print("\nno problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
