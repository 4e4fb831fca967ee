#!/usr/bin/env python
"""Check a video-language dataset before training on it; exit code 1 when anything is wrong.

Reads the annotations exactly as training does (same validation, same split), then reads every clip the way
the training loader does and reports:

* counts per split: samples, distinct videos, total and mean clip duration;
* malformed annotation lines (including text that is not UTF-8), missing / empty / unreadable / corrupt /
  truncated files, clips past the end of their video's frames (the video stream's end, not the container's),
  feature files of the wrong shape or with NaNs;
* for each video clip: one deterministic read (validation), ``--reads`` reads with the training jitter, and the
  clip's first and last frame — checking that every returned frame is the one shown at the asked time (its
  timestamp at or before it, within one frame) and that the video stream covers the clip;
* warnings that do not stop training: keyframe intervals longer than ``--max-keyframe-interval`` seconds
  (every read decodes up to a whole interval; the re-encode command is printed), containers whose length differs
  from their video stream's (audio longer than the video, or a truncated file), rotation metadata;
* empty captions (a problem with ``--require-captions``, or when some rows have captions and
  others do not — usually a mistake);
* a summary per problem kind.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from hierarchicalvlm.data.annotations import SPLITS, Annotation, AnnotationError, BadSampleError, load_split_annotations
from hierarchicalvlm.data.features import check_feature_shape, clip_rows, feature_path, open_feature_file
from hierarchicalvlm.data.video_io import (
    Clip,
    VideoInfo,
    clip_bounds,
    decode_frames,
    probe_video,
    read_clip_with_times,
    sample_times,
)

EPS = 1e-6


@dataclass
class RowCheck:
    """What checking one annotation row found: clip length, problems and warnings as ``(kind, message)``."""

    duration: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)


def reencode_command(info: VideoInfo, seconds: float = 1.0) -> str:
    """The FFmpeg command that gives ``info``'s video a keyframe every ``seconds`` (audio copied)."""
    gop = max(1, round((info.fps or 25.0) * seconds))
    out = Path(info.path).with_name(Path(info.path).stem + f".gop{gop}.mkv")  # Matroska holds any audio codec
    return f"ffmpeg -i {info.path} -c:v libx264 -crf 18 -g {gop} -c:a copy {out}"


def video_warnings(info: VideoInfo, max_keyframe_interval: float) -> list[tuple[str, str]]:
    """Facts of a readable video that slow training down or hint at a damaged file."""
    found = []
    if info.keyframe_interval is not None and info.keyframe_interval > max_keyframe_interval:
        found.append(("long keyframe interval", (
            f"{info.path}: keyframes up to {info.keyframe_interval:.1f} s apart: every read decodes up to that much "
            f"video; re-encode it with a keyframe every second: {reencode_command(info)}")))
    if info.container_duration is not None and abs(info.container_duration - info.duration) > max(0.5, 2 * info.frame_interval):
        found.append(("container length differs from video", (
            f"{info.path}: {info.describe_end()} (audio longer than the video, or a truncated file): "
            "clips are read up to the video's end")))
    if info.rotation:
        found.append(("rotated", f"{info.path}: rotation metadata {info.rotation} degrees (frames are rotated as "
                                 "FFmpeg displays them; data.apply_rotation=false keeps them as stored)"))
    return found


def check_read(clip: Clip) -> Optional[str]:
    """Why the frames of ``clip`` are not the ones shown at the asked times (``None`` when they are)."""
    info = clip.info
    gap = (info.max_frame_gap or info.frame_interval) + EPS
    for asked, got in zip(clip.times, clip.frame_times):
        if not clip.start - EPS <= asked < min(clip.end, info.duration) + EPS:
            return f"asked time {asked:.3f} s is outside the clip [{clip.start:.3f}, {clip.end:.3f}) s"
        if got > asked + EPS or asked - got > gap:
            return (f"the frame returned for {asked:.3f} s has timestamp {got:.3f} s (the frame shown then lies at "
                    f"most {gap:.3f} s before it)")
    return None


def check_video(row: Annotation, root: Optional[Path], args: argparse.Namespace) -> RowCheck:
    """Read one row's clip as training does (see the module docstring)."""
    result = RowCheck()
    try:
        path = row.resolve(root)
    except ValueError as err:
        result.problems.append(("annotation", str(err)))
        return result
    try:
        info = probe_video(path)
        result.warnings = video_warnings(info, args.max_keyframe_interval)
        if info.damage:
            result.problems.append(("damaged file", f"{path}: {info.damage}; {info.describe_end()}"))
        start, end = clip_bounds(info, row.start, row.end, args.clamp_end)
        result.duration = end - start
        generator = torch.Generator().manual_seed(args.seed + row.line)
        edges = [start, max(start, min(end, info.duration) - info.frame_interval / 2)]
        reads = [(False, None)] + [(True, generator)] * args.reads
        for random, gen in reads:
            clip = read_clip_with_times(path, args.num_frames, args.sampling, args.fps, row.start, row.end,
                                        short_side=8, random=random, generator=gen, clamp_end=args.clamp_end,
                                        rotate=not args.keep_rotation)
            problem = check_read(clip)
            if problem:
                result.problems.append(("wrong frames", f"{path}: {problem}"))
                break
        if args.decode and info.fps:  # every frame of the clip
            edges += sample_times(start, end, num_frames=max(1, int((end - start) * info.fps)), sampling="uniform")
        decode_frames(path, edges, size=(8, 8))
    except BadSampleError as err:
        result.problems.append((getattr(err, "kind", "unreadable"), str(err)))
    except ValueError as err:
        result.problems.append(("annotation", str(err)))
    return result


def check_features(row: Annotation, root: Optional[Path], feature_dim: Optional[int],
                   feature_fps: Optional[float], clamp_end: bool = False) -> tuple[float, Optional[str], Optional[int]]:
    """``(clip duration in rows or seconds, problem or None, feature size)`` of one annotation row."""
    try:
        path = feature_path(row, root)
        array = open_feature_file(path)
        check_feature_shape(array, path, feature_dim)
        if (row.start is not None or row.end is not None) and feature_fps is None:
            return 0.0, "row has start/end: pass --feature-fps (rows per second) to check it", int(array.shape[1])
        first, last = clip_rows(array.shape[0], row.start, row.end, feature_fps, path, clamp_end)
        if not np.isfinite(np.asarray(array[first:last], dtype=np.float64)).all():
            return 0.0, f"{path}: features contain NaN or infinite values", int(array.shape[1])
        rows = last - first
        return (rows / feature_fps if feature_fps else float(rows)), None, int(array.shape[1])
    except (BadSampleError, ValueError) as err:
        return 0.0, str(err), None


def caption_problems(rows: list[Annotation], require_captions: bool) -> list[tuple[str, int, str, str]]:
    empty = [r for r in rows if not r.caption]
    if not empty or (not require_captions and len(empty) == len(rows)):
        return []  # every row has a caption, or the data has none (e.g. QA only)
    return [(r.source, r.line, "empty caption", "empty caption") for r in empty]


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
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
    video = parser.add_argument_group("video reads (use the settings you train with)")
    video.add_argument("--num-frames", type=int, default=8, help="data.num_frames")
    video.add_argument("--sampling", choices=("uniform", "fps"), default="uniform", help="data.sampling")
    video.add_argument("--fps", type=float, default=1.0, help="data.fps (with --sampling fps)")
    video.add_argument("--clamp-end", action="store_true", help="data.clamp_to_video_end=true")
    video.add_argument("--keep-rotation", action="store_true", help="data.apply_rotation=false")
    video.add_argument("--reads", type=int, default=2, help="training-style (jittered) reads per row")
    video.add_argument("--seed", type=int, default=0, help="seed of the jittered reads")
    video.add_argument("--max-keyframe-interval", type=float, default=4.0,
                       help="warn about videos whose keyframes are further apart (seconds)")
    video.add_argument("--decode", action="store_true", help="also decode every frame of every clip (slow)")
    parser.add_argument("--workers", type=int, default=4, help="files checked in parallel")
    return parser.parse_args(argv)


def check_all_features(rows: list[Annotation], args: argparse.Namespace, pool: ThreadPoolExecutor) -> list[RowCheck]:
    if args.feature_dim is None:  # the most common size is the expected one
        checked = pool.map(lambda r: check_features(r, args.feature_root, None, args.feature_fps), rows)
        dims = Counter(dim for _, _, dim in checked if dim is not None)
        args.feature_dim = dims.most_common(1)[0][0] if dims else None
    checked = pool.map(lambda r: check_features(r, args.feature_root, args.feature_dim, args.feature_fps,
                                                args.clamp_end), rows)
    return [RowCheck(duration, [("feature file", problem)] if problem else []) for duration, problem, _ in checked]


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
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
            results = list(pool.map(lambda r: check_video(r, args.video_root, args), rows))
            unit = "s"
        else:
            results = check_all_features(rows, args, pool)
            unit = "s" if args.feature_fps else "rows"
    duration_of = {}
    warnings: dict[str, str] = {}  # message -> kind, each file's warning once
    for row, result in zip(rows, results):
        duration_of[id(row)] = result.duration
        problems += [(row.source, row.line, kind, message) for kind, message in result.problems]
        warnings.update({message: kind for kind, message in result.warnings})

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
    if warnings:
        print(f"\n{len(warnings)} warning(s) (training works, but read these):")
        for message in sorted(warnings):
            print(f"  {message}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for source, line, _, message in sorted(problems):
            print(f"  {source} line {line}: {message}")
    if problems or warnings:
        print("\nsummary:")
        for kind, count in Counter(kind for _, _, kind, _ in problems).most_common():
            print(f"  problem  {kind}: {count} row(s)")
        for kind, count in Counter(warnings.values()).most_common():
            print(f"  warning  {kind}: {count} file(s)")
    if problems:
        return 1
    print("\nno problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
