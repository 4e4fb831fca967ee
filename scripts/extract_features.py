#!/usr/bin/env python
"""Decode videos once, ahead of training: fill the frame cache, or pre-extract per-frame features.

``frames`` mode decodes every clip of the annotations exactly as ``data=video_text`` does with the
same settings and stores it in ``--cache-dir`` (uint8 ``.npy``); train with
``data.cache_dir=<the same folder>`` and the same ``num_frames``/``frame_size``/``sampling``.

``features`` mode decodes every distinct video at ``--fps`` frames per second and writes one
``(frames, feature_dim)`` file per video under ``--out-dir``, mirroring the video paths
(``cooking/v1.mp4`` -> ``cooking/v1.npy``); row ``k`` covers ``[k / fps, (k + 1) / fps)`` seconds.
Train with ``data=features data.feature_root=<out-dir> data.feature_fps=<fps>``.

Feature extractors (``--extractor``):

* ``mean-patch``: the mean colour of each cell of a ``--grid`` x ``--grid`` grid
  (``3 * grid**2`` features) — no parameters;
* ``random-conv``: a frozen two-layer conv net with random weights from ``--seed``
  (``--feature-dim`` features) — cheap, deterministic, for pipeline tests and baselines;
* ``clip``, ``siglip``, ``dinov2``: the pretrained image encoder of ``model/visual=<name>``
  (``conf/model/visual/<name>.yaml``, through ``transformers``; weights download on first use, then cached),
  frozen, one pooled feature vector per frame (its width: 768 for CLIP/SigLIP base, 384 for DINOv2 small);
  ``--set key=value`` overrides its config (e.g. ``--set name=facebook/dinov2-base``). Use
  ``--frame-size 224``: frames are resized to the encoder's input size anyway;
* ``package.module:factory``: plug in any other backbone. ``factory()`` must return a callable
  (e.g. an ``nn.Module`` in eval mode) mapping float frames ``(T, 3, H, W)`` in ``[0, 1]``
  to features ``(T, F)``; e.g. a CLIP/DINO image encoder that normalises its input itself.

Examples::

    python scripts/extract_features.py frames --annotations ann.csv --video-root clips --cache-dir cache \\
        --num-frames 8 --frame-size 64
    python scripts/extract_features.py features --annotations ann.csv --video-root clips --out-dir feats \\
        --fps 2 --extractor random-conv --feature-dim 256 --format safetensors
    python scripts/extract_features.py features --annotations ann.csv --video-root clips --out-dir clip_feats \\
        --fps 1 --extractor clip --frame-size 224
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hierarchicalvlm.data.annotations import SPLITS, Annotation, BadSampleError, load_split_annotations
from hierarchicalvlm.data.features import feature_relative_path
from hierarchicalvlm.data.video_io import crop_frames, decode_frames, probe_video, resize_for_short_side, to_float_tensor
from hierarchicalvlm.data.video_text import VideoTextFolderDataModule, as_frame_size

CONF = Path(__file__).resolve().parents[1] / "conf"
PRETRAINED = tuple(sorted(p.stem for p in (CONF / "model" / "visual").glob("*.yaml") if p.stem != "patch"))

def feature_times(duration: float, fps: float) -> list[float]:
    """Centre of each row's span ``[k / fps, (k + 1) / fps)`` whose centre lies before the video's last frame ends."""
    rows = max(1, math.ceil(duration * fps - 0.5 - 1e-9))
    return [(k + 0.5) / fps for k in range(rows)]


def read_video_rows(path: Path, fps: float, short_side: int, rotate: bool = True) -> np.ndarray:
    """The frames shown at the centre of each feature row of the whole video (the video stream's own end)."""
    info = probe_video(path)
    size = resize_for_short_side(*info.display_size(rotate), short_side)
    return decode_frames(path, feature_times(info.duration, fps), size=size, rotate=rotate)


class MeanPatchExtractor(nn.Module):
    """Mean colour of each cell of a ``grid x grid`` partition of the frame: ``3 * grid**2`` features."""

    def __init__(self, grid: int = 4) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(frames, self.grid).flatten(1)


class RandomConvExtractor(nn.Module):
    """A frozen conv net with seeded random weights: cheap, deterministic per-frame features."""

    def __init__(self, feature_dim: int = 128, seed: int = 0) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=4, stride=4), nn.GELU(),
            nn.Conv2d(32, feature_dim, kernel_size=3, stride=2, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        torch.random.set_rng_state(generator_state)
        self.requires_grad_(False)
        self.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames * 2 - 1)


def pretrained_extractor(name: str, overrides: list[str]) -> nn.Module:
    """The frozen image encoder of ``model/visual=<name>`` (the training config's choice, ``overrides`` applied)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from hierarchicalvlm.models.visual_backbone import FrameFeatureExtractor

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF), job_name="extract_features"):
        overrides = [f"model/visual={name}", *(f"model.visual.{o}" for o in overrides)]
        cfg = compose(config_name="train", overrides=overrides)
    return FrameFeatureExtractor(cfg.model.visual)


def build_extractor(name: str, feature_dim: int, grid: int, seed: int,
                    overrides: Optional[list[str]] = None) -> Callable[[torch.Tensor], torch.Tensor]:
    if name in PRETRAINED:
        return pretrained_extractor(name, overrides or [])
    if name == "mean-patch":
        return MeanPatchExtractor(grid)
    if name == "random-conv":
        return RandomConvExtractor(feature_dim, seed)
    if ":" not in name:
        raise SystemExit(f"--extractor must be mean-patch, random-conv, {', '.join(PRETRAINED)} or "
                         f"package.module:factory, got {name!r}")
    module_name, factory_name = name.split(":", 1)
    extractor = getattr(importlib.import_module(module_name), factory_name)()
    if isinstance(extractor, nn.Module):
        extractor.eval()
    return extractor


class _Rows(Dataset):
    """Runs ``work(row)`` per row in loader workers; a bad file gives ``(row, None, reason)``."""

    def __init__(self, rows: list[Annotation], work: Callable[[Annotation], Any]) -> None:
        self.rows, self.work = rows, work

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Annotation, Any, Optional[str]]:
        row = self.rows[index]
        try:
            return row, self.work(row), None
        except BadSampleError as err:
            return row, None, str(err)


def _unchanged(item: Any) -> Any:
    return item


def _each(rows: list[Annotation], work: Callable[[Annotation], Any], workers: int):
    """``(row, work(row), problem)`` for every row, computed in ``workers`` processes."""
    yield from DataLoader(_Rows(rows, work), batch_size=None, num_workers=workers, collate_fn=_unchanged)


def _load_rows(args: argparse.Namespace) -> list[Annotation]:
    splits = load_split_annotations(args.annotations, args.train_annotations, args.val_annotations,
                                    args.test_annotations)
    return [row for split in SPLITS for row in splits[split]]


def fill_frame_cache(args: argparse.Namespace) -> int:
    module = VideoTextFolderDataModule(
        annotations=args.annotations, video_root=str(args.video_root), num_frames=args.num_frames,
        frame_size=args.frame_size, short_side=args.short_side, sampling=args.sampling, fps=args.fps,
        cache_dir=str(args.cache_dir), train_annotations=args.train_annotations,
        clamp_to_video_end=args.clamp_end, apply_rotation=not args.keep_rotation,
        val_annotations=args.val_annotations, test_annotations=args.test_annotations,
    )
    failed = []
    for row, frames, problem in _each(_load_rows(args), module.loader.read_cached, args.workers):
        if problem:
            failed.append(f"{row.where}: {problem}")
    return _report(failed, f"frame cache in {args.cache_dir}")


def extract(args: argparse.Namespace) -> int:
    extractor = build_extractor(args.extractor, args.feature_dim, args.grid, args.seed, args.set)
    size = as_frame_size(args.frame_size)
    out_dir: Path = args.out_dir
    rows = {row.video: row for row in _load_rows(args)}  # one file per video, whatever its clips

    def target(row: Annotation) -> Path:
        return out_dir / feature_relative_path(row.video).with_suffix(f".{args.format}")

    def decode(row: Annotation) -> Optional[np.ndarray]:
        if target(row).exists() and not args.overwrite:
            return None
        frames = read_video_rows(row.resolve(args.video_root), args.fps, max(size), rotate=not args.keep_rotation)
        return crop_frames(frames, size)

    failed, written, dim = [], 0, None
    for row, frames, problem in _each(list(rows.values()), decode, args.workers):
        if problem:
            failed.append(f"{row.where}: {problem}")
            continue
        if frames is None:
            continue  # already extracted
        with torch.no_grad():
            features = torch.cat([extractor(to_float_tensor(chunk)) for chunk in np.array_split(
                frames, max(1, len(frames) // args.chunk))]).float()
        dim = features.shape[1]
        path = target(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.format == "npy":
            np.save(path, features.numpy())
        else:
            from safetensors.torch import save_file

            save_file({"features": features.contiguous()}, str(path))
        written += 1
    meta = {"feature_fps": args.fps, "feature_dim": dim, "extractor": args.extractor, "frame_size": list(size),
            "extractor_overrides": args.set}
    (out_dir / "features.json").parent.mkdir(parents=True, exist_ok=True)
    (out_dir / "features.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {written} feature file(s) of dim {dim} to {out_dir}; train with: data=features "
          f"data.feature_root={out_dir} data.feature_fps={args.fps}")
    return _report(failed, f"features in {out_dir}")


def _report(failed: list[str], what: str) -> int:
    if failed:
        print(f"{len(failed)} file(s) could not be read, {what} is incomplete:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"{what}: done")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    frames = modes.add_parser("frames", help="fill the decoded-frame cache of data=video_text")
    features = modes.add_parser("features", help="write per-frame features for data=features")
    for sub in (frames, features):
        sub.add_argument("--annotations")
        sub.add_argument("--train-annotations")
        sub.add_argument("--val-annotations")
        sub.add_argument("--test-annotations")
        sub.add_argument("--video-root", type=Path, required=True)
        sub.add_argument("--frame-size", type=int, nargs="+", default=[64], help="crop size: S or H W")
        sub.add_argument("--workers", type=int, default=2, help="decoding processes")
        sub.add_argument("--keep-rotation", action="store_true", help="frames as stored (data.apply_rotation=false)")
    frames.add_argument("--cache-dir", type=Path, required=True)
    frames.add_argument("--num-frames", type=int, default=8)
    frames.add_argument("--short-side", type=int)
    frames.add_argument("--sampling", choices=("uniform", "fps"), default="uniform")
    frames.add_argument("--fps", type=float, default=1.0)
    frames.add_argument("--clamp-end", action="store_true", help="data.clamp_to_video_end=true")
    features.add_argument("--out-dir", type=Path, required=True)
    features.add_argument("--fps", type=float, default=1.0, help="feature rows per second of video")
    features.add_argument("--extractor", default="mean-patch",
                          help=f"mean-patch | random-conv | {' | '.join(PRETRAINED)} | module:factory")
    features.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a field of conf/model/visual/<extractor>.yaml, e.g. name=facebook/dinov2-base")
    features.add_argument("--feature-dim", type=int, default=128, help="size of random-conv features")
    features.add_argument("--grid", type=int, default=4, help="mean-patch grid (3 * grid**2 features)")
    features.add_argument("--seed", type=int, default=0, help="random-conv weights")
    features.add_argument("--format", choices=("npy", "safetensors"), default="npy")
    features.add_argument("--chunk", type=int, default=64, help="frames per extractor call")
    features.add_argument("--overwrite", action="store_true", help="re-extract files that exist")
    args = parser.parse_args(argv)
    args.frame_size = args.frame_size[0] if len(args.frame_size) == 1 else args.frame_size
    if args.annotations is None and args.train_annotations is None:
        parser.error("give --annotations (or --train-annotations)")
    return fill_frame_cache(args) if args.mode == "frames" else extract(args)


if __name__ == "__main__":
    sys.exit(main())
