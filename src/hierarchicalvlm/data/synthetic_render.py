"""Drawing the synthetic videos: a small palette, a few tiny sprites, and a vectorised renderer.

The objects are a few pixels wide so that they survive a 4x4 or 8x8 patch embedding, the
colours are saturated and far apart so that they stay distinguishable on a dark, lightly noisy
background, and "marked" frames get a one-pixel white border (a colour no object uses).
Rendering is pure numpy and costs a few microseconds per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Saturated colours: every one has a channel >= 0.9, and any two differ by >= 0.7 in some channel.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.1, 0.1),
    "green": (0.1, 0.9, 0.1),
    "blue": (0.2, 0.2, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "cyan": (0.1, 0.9, 1.0),
    "magenta": (1.0, 0.2, 1.0),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
MARK_COLOUR = (1.0, 1.0, 1.0)

# Binary sprites; each differs from the others in size or layout at any position.
SPRITES: dict[str, np.ndarray] = {
    "square": np.ones((3, 3), dtype=bool),
    "plus": np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool),
    "bar": np.ones((1, 4), dtype=bool),
    "dot": np.ones((2, 2), dtype=bool),
}
SHAPES: tuple[str, ...] = tuple(SPRITES)

# Objects keep one pixel away from the frame edge, where the mark border is drawn.
MARGIN = 1
MIN_FRAME_SIZE = 8

_PALETTE_ARRAY = np.array([PALETTE[c] for c in COLOURS], dtype=np.float32)
_SPRITE_OFFSETS = [np.argwhere(SPRITES[s]) for s in SHAPES]  # (pixels, 2) of (dy, dx) per shape


@dataclass(frozen=True)
class Event:
    """One object shown in one frame at pixel ``(y, x)`` (top-left of its sprite).

    ``key`` marks the events the question is about; ``marked`` frames get a white border.
    """

    frame: int
    colour: str
    shape: str
    y: int
    x: int
    key: bool = False
    marked: bool = False

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


def render_frames(
    events: list[Event], num_frames: int, frame_size: int, noise: float, rng: np.random.Generator
) -> torch.Tensor:
    """Draw ``events`` into a ``(num_frames, 3, frame_size, frame_size)`` float32 video in [0, 1].

    The background is uniform noise in ``[0, noise)``; object and border pixels take their exact colour.
    """
    video = rng.random((num_frames, 3, frame_size, frame_size), dtype=np.float32)
    video *= np.float32(noise)
    if events:
        marked = np.array([e.frame for e in events if e.marked], dtype=np.int64)
        if marked.size:
            border = np.array(MARK_COLOUR, dtype=np.float32)[:, None]
            video[marked, :, 0, :] = border
            video[marked, :, -1, :] = border
            video[marked, :, :, 0] = border
            video[marked, :, :, -1] = border
        frames = np.array([e.frame for e in events], dtype=np.int64)
        ys = np.array([e.y for e in events], dtype=np.int64)
        xs = np.array([e.x for e in events], dtype=np.int64)
        colours = np.array([COLOURS.index(e.colour) for e in events], dtype=np.int64)
        shapes = np.array([SHAPES.index(e.shape) for e in events], dtype=np.int64)
        for shape_index, offsets in enumerate(_SPRITE_OFFSETS):
            chosen = shapes == shape_index
            if not chosen.any():
                continue
            # Advanced indices split by a slice: the result is (events, pixels, channels).
            t = frames[chosen][:, None]
            y = ys[chosen][:, None] + offsets[None, :, 0]
            x = xs[chosen][:, None] + offsets[None, :, 1]
            video[t, :, y, x] = _PALETTE_ARRAY[colours[chosen]][:, None, :]
    return torch.from_numpy(video)
