#!/usr/bin/env python
"""Measure the data loader alone (no model): samples per second of ``data=video_text`` and ``data=features``.

Without ``--annotations`` a synthetic dataset is written to a temporary folder first: ``--videos``
H.264 videos of ``--seconds`` seconds at ``--width`` x ``--height`` and 24 fps (the encoder's
default keyframe interval), and one ``(frames, --feature-dim)`` ``.npy`` file per video at 1 row
per second. Each setting iterates the training loader (random sampling, as in training) for
``--batches`` batches after one warm-up batch (worker start-up is reported separately).

``--containers`` measures decoding alone instead, per container and keyframe interval: for each of MP4 with
keyframes every 0.5 s / 2 s / 10 s, MPEG-TS, MKV with audio longer than the video and WebM written to a pipe, it
writes ``--videos`` stamped videos (``hierarchicalvlm.data.stamped_video``, with noise) and reads ``--reads``
training-style clips of ``--clip-seconds`` at random places in them, in this process (random jitter, as
``data=video_text`` with ``num_workers: 0``), reporting samples/s and the frames decoded, seeks and back-offs
per sample.

Examples::

    python scripts/bench_loader.py --workers 0 1 2
    python scripts/bench_loader.py --containers --videos 4 --seconds 20 --clip-seconds 2 --reads 48
    python scripts/bench_loader.py --kind video_text --annotations ann.csv --video-root clips --workers 4 8
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from hierarchicalvlm.data.annotations import write_annotations
from hierarchicalvlm.data.base import VideoTextDataModule
from hierarchicalvlm.data.features import FeatureDataModule
from hierarchicalvlm.data.stamped_video import write_stamped_video
from hierarchicalvlm.data.video_io import crop_frames, probe_video, read_clip_with_times, to_float_tensor, write_video
from hierarchicalvlm.data.video_text import VideoTextFolderDataModule

# (label, file suffix, writer options); keyframe intervals in frames at 24 fps
CONTAINERS = [
    ("mp4, keyframe every 0.5 s", ".mp4", dict(gop=12)),
    ("mp4, keyframe every 2 s", ".mp4", dict(gop=48)),
    ("mp4, keyframe every 10 s", ".mp4", dict(gop=240)),
    ("MPEG-TS, keyframe every 2 s", ".ts", dict(gop=48, start_frame=34)),
    ("mkv, audio 2x longer than video, keyframe every 2 s", ".mkv", dict(gop=48, audio="double")),
    ("webm (VP8) written to a pipe, keyframe every 2 s", ".webm", dict(gop=48, codec="libvpx", pipe=True)),
]


def bench_containers(root: Path, args: argparse.Namespace) -> None:
    """Samples/s of decoding per container and keyframe interval (see the module docstring)."""
    frames = int(args.seconds * 24)
    print(f"decoding only, in-process: {args.videos} videos per row, {args.seconds:g} s, {args.width}x{args.height}, "
          f"24 fps; {args.reads} training reads of {args.clip_seconds:g}-s clips at random places, {args.num_frames} "
          f"frames each ({args.frame_size}x{args.frame_size} crops)\n")
    print("| container | keyframe interval (s) | samples/s | frames decoded / sample | seeks / sample | back-offs / sample |")
    print("|---|---|---|---|---|---|")
    for index, (label, suffix, options) in enumerate(CONTAINERS):
        options = dict(options)
        audio = args.seconds * 2 if options.pop("audio", None) else None
        paths = [write_stamped_video(root / f"c{index}" / f"v{i}{suffix}", frames, size=(args.height, args.width),
                                     noise=12, audio_seconds=audio, **options) for i in range(args.videos)]
        for path in paths:
            probe_video(path)  # probed once per file, as in training; not timed
        generator = torch.Generator().manual_seed(0)
        starts = np.random.default_rng(0).uniform(0, max(0.0, args.seconds - args.clip_seconds), args.reads)
        totals = {"decoded": 0, "seeks": 0, "backoffs": 0}
        start = time.perf_counter()
        for read in range(args.reads):
            clip_start = float(starts[read])
            clip = read_clip_with_times(paths[read % len(paths)], args.num_frames, start=clip_start,
                                        end=min(args.seconds, clip_start + args.clip_seconds),
                                        short_side=args.frame_size, random=True, generator=generator)
            to_float_tensor(crop_frames(clip.frames, (args.frame_size, args.frame_size), random=True))
            for key in totals:
                totals[key] += clip.stats[key]
        rate = args.reads / (time.perf_counter() - start)
        gop = probe_video(paths[0]).keyframe_interval
        print(f"| {label} | {gop:.1f} | {rate:.1f} | {totals['decoded'] / args.reads:.0f} | "
              f"{totals['seeks'] / args.reads:.1f} | {totals['backoffs'] / args.reads:.2f} |", flush=True)


def write_synthetic_dataset(root: Path, videos: int, seconds: float, width: int, height: int,
                            feature_dim: int) -> Path:
    """Moving-gradient H.264 videos, features and an annotation file; returns the annotation path."""
    rng = np.random.default_rng(0)
    fps, frames = 24, int(seconds * 24)
    yy, xx = np.mgrid[0:height, 0:width]
    rows = []
    for i in range(videos):
        phase = np.arange(frames)[:, None, None] * (2 + i % 5)
        base = ((xx[None] + yy[None] + phase) % 256).astype(np.uint8)
        clip = np.stack([base, np.roll(base, 7, axis=2), 255 - base], axis=-1)
        clip = np.clip(clip.astype(np.int16) + rng.integers(-8, 8, clip.shape), 0, 255).astype(np.uint8)
        write_video(root / "videos" / f"v{i:03d}.mp4", clip, fps=fps)
        (root / "features" / "videos").mkdir(parents=True, exist_ok=True)
        np.save(root / "features" / "videos" / f"v{i:03d}.npy",
                rng.normal(size=(max(1, int(seconds)), feature_dim)).astype(np.float32))
        rows.append({"video": f"videos/v{i:03d}.mp4", "caption": f"gradient number {i}",
                     "question": "which way?", "answer": "left" if i % 2 else "right", "split": "train"})
    return write_annotations(rows, root / "ann.csv")


def measure(module: VideoTextDataModule, batches: int) -> tuple[float, float]:
    """``(samples per second, seconds to the first batch)`` of the training loader.

    Workers are persistent, so passes over a small dataset do not pay the worker start-up again."""
    module.setup()
    start = time.perf_counter()
    loader = module.train_dataloader()
    batches_of_epoch = iter(loader)
    next(batches_of_epoch)
    first = time.perf_counter() - start
    samples, measured = 0, 0
    start = time.perf_counter()
    while measured < batches:
        try:
            batch = next(batches_of_epoch)
        except StopIteration:
            batches_of_epoch = iter(loader)
            continue
        samples += batch["frames"].shape[0]
        measured += 1
    return samples / (time.perf_counter() - start), first


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("video_text", "features", "both"), default="both")
    parser.add_argument("--annotations", help="your annotation file (default: a synthetic dataset)")
    parser.add_argument("--video-root")
    parser.add_argument("--feature-root")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=10, help="batches measured per setting")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--frame-size", type=int, default=64)
    parser.add_argument("--sampling", choices=("uniform", "fps"), default="uniform")
    parser.add_argument("--cache-dir", help="measure reading the decoded-frame cache (filled by an untimed pass)")
    parser.add_argument("--max-frames", type=int, default=64)
    parser.add_argument("--synthetic-dir", help="write the synthetic dataset here and reuse it in later runs")
    parser.add_argument("--videos", type=int, default=32, help="synthetic videos")
    parser.add_argument("--seconds", type=float, default=10.0, help="synthetic video length")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--feature-dim", type=int, default=512)
    parser.add_argument("--containers", action="store_true", help="decoding speed per container and keyframe interval")
    parser.add_argument("--reads", type=int, default=48, help="clips read per container (--containers)")
    parser.add_argument("--clip-seconds", type=float, default=2.0, help="clip length (--containers)")
    args = parser.parse_args(argv)
    logging.getLogger("hierarchicalvlm").setLevel(logging.ERROR)  # "the val split is empty" is expected here

    with tempfile.TemporaryDirectory() as tmp:
        if args.containers:
            bench_containers(Path(args.synthetic_dir or tmp), args)
            return 0
        if args.annotations is None:
            root = Path(args.synthetic_dir or tmp)
            if (root / "ann.csv").exists():
                args.annotations = str(root / "ann.csv")
            else:
                args.annotations = str(write_synthetic_dataset(root, args.videos, args.seconds, args.width,
                                                               args.height, args.feature_dim))
            args.video_root, args.feature_root = str(root), str(root / "features")
            source = f"synthetic: {args.videos} H.264 videos, {args.seconds:g} s, {args.width}x{args.height}, 24 fps"
        else:
            source = args.annotations
        print(f"data: {source}\n")
        print("| data | workers | batch | per sample | samples/s | batches/s | first batch (s) |")
        print("|---|---|---|---|---|---|---|")
        kinds = ["video_text", "features"] if args.kind == "both" else [args.kind]
        for kind in kinds:
            for workers in args.workers:
                common = dict(annotations=args.annotations, batch_size=args.batch_size, num_workers=workers,
                              persistent_workers=workers > 0, split_ratios=(1.0, 0.0, 0.0))
                if kind == "video_text":
                    module: VideoTextDataModule = VideoTextFolderDataModule(
                        video_root=args.video_root, num_frames=args.num_frames, frame_size=args.frame_size,
                        sampling=args.sampling, cache_dir=args.cache_dir, **common)
                    shape = f"{args.num_frames}x3x{args.frame_size}x{args.frame_size}"
                else:
                    module = FeatureDataModule(feature_root=args.feature_root, max_frames=args.max_frames, **common)
                    shape = f"<={args.max_frames}x{args.feature_dim}"
                if args.cache_dir:  # measure reading the cache, not filling it
                    module.setup()
                    for _ in module.train_dataloader():
                        pass
                rate, first = measure(module, args.batches)
                print(f"| {kind} | {workers} | {args.batch_size} | {shape} | {rate:.1f} | "
                      f"{rate / args.batch_size:.2f} | {first:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
