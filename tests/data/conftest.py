"""Fixtures for the real-data tests: tiny videos written with PyAV, feature files, annotation files.

Frame ``k`` of the gray test videos has every pixel equal to ``step * k`` (encoded losslessly), so a
test can tell which frames were sampled (:func:`frame_indices`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hierarchicalvlm.data.video_io import write_video

FPS = 24
LOSSLESS = {"qp": "0"}


def gray_video(num_frames: int, step: int, height: int = 32, width: int = 32) -> np.ndarray:
    values = (np.arange(num_frames) * step).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (num_frames, height, width, 3)).copy()


def frame_indices(frames: np.ndarray | torch.Tensor, step: int) -> list[int]:
    """Which gray test-video frame each sampled frame is (frames uint8 (T,H,W,3) or float (T,3,H,W))."""
    if isinstance(frames, torch.Tensor):
        means = frames.float().mean(dim=(1, 2, 3)) * 255.0
    else:
        means = torch.from_numpy(frames.astype(np.float64)).mean(dim=(1, 2, 3))
    return [int(round(float(m) / step)) for m in means]


@pytest.fixture(name="frame_indices")
def frame_indices_fixture():
    """The :func:`frame_indices` helper, for tests (conftest modules are not importable)."""
    return frame_indices


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with good, bad and odd videos and feature files (written once per test session)."""
    root = tmp_path_factory.mktemp("media")
    videos = root / "videos"
    write_video(videos / "a.mp4", gray_video(24, 10), fps=FPS, options=LOSSLESS)  # 1 s, frame k = 10k
    write_video(videos / "b.mp4", gray_video(48, 5), fps=FPS, options=LOSSLESS)  # 2 s, frame k = 5k
    write_video(videos / "sub" / "d.mp4", gray_video(24, 10), fps=FPS, options=LOSSLESS)
    write_video(videos / "c.webm", gray_video(24, 10), fps=FPS, codec="libvpx")  # no duration in metadata
    write_video(videos / "e.avi", gray_video(24, 10), fps=FPS, codec="mpeg4")
    # 5 s, 32x48, a keyframe every 12 frames, frame k coloured (10 * (k % 24), 10 * (k // 24), 0)
    k = np.arange(120)
    long = np.zeros((120, 32, 48, 3), np.uint8)
    long[..., 0] = (10 * (k % 24))[:, None, None]
    long[..., 1] = (10 * (k // 24))[:, None, None]
    write_video(videos / "long.mp4", long, fps=FPS, options={"qp": "0", "g": "12", "sc_threshold": "0"})
    (videos / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (videos / "empty.mp4").write_bytes(b"")

    features = root / "features"  # mirrors the video paths; the bad files are named directly
    (features / "videos" / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(features / "videos" / "a.npy", rng.normal(size=(24, 16)).astype(np.float32))
    torch.save(torch.randn(48, 16), features / "videos" / "b.pt")
    from safetensors.torch import save_file

    save_file({"features": torch.randn(20, 16)}, str(features / "videos" / "c.safetensors"))
    np.save(features / "videos" / "sub" / "d.npy", np.arange(100 * 16, dtype=np.float32).reshape(100, 16))
    np.save(features / "wrong_dim.npy", rng.normal(size=(10, 7)).astype(np.float32))
    np.save(features / "flat.npy", rng.normal(size=(16,)).astype(np.float32))
    nan = rng.normal(size=(5, 16)).astype(np.float32)
    nan[2, 3] = np.nan
    np.save(features / "has_nan.npy", nan)
    (features / "corrupt.npy").write_bytes(os.urandom(300))
    return root


@pytest.fixture
def write_file(tmp_path: Path):
    """``write_file(name, text)`` -> path of a new text file under ``tmp_path``."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


GOOD_CSV = """video,caption,question,answer,split
videos/a.mp4,a gray square fades in,what fades in?,square,train
videos/b.mp4,a slower gray fade,how fast is the fade?,slow,train
videos/sub/d.mp4,another fade,what fades in?,square,train
videos/c.webm,a webm fade,what container?,webm,val
videos/e.avi,an avi fade,what container?,avi,test
"""


@pytest.fixture
def good_csv(write_file) -> Path:
    return write_file("ann.csv", GOOD_CSV)
