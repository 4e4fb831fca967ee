"""How far each mechanism sees: accuracy by evidence depth x sequence length, from a sweep's job summaries.

Every job of a long-range sweep logs its accuracy per depth bucket (``<stage>/qa_acc/depth_<k>``: bucket 0
holds evidence in the first tenth of the video, the farthest from the question asked after it). This module
turns those into one table and one heatmap per mechanism (depth down, length across, accuracy as colour,
mean over seeds), the picture a needle-in-a-haystack test draws, and a binomial interval for any accuracy.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any, Optional

DEPTH_KEY = re.compile(r"^(test|val)/qa_acc/depth_(\d+)$")


def depth_profile(summary: dict[str, Any]) -> dict[int, float]:
    """Accuracy per depth bucket of one job (test split if it has one, else validation); {} without depths.
    ``summary`` is a job's summary (its ``metrics``) or a flat row of the sweep's frame (metrics as columns)."""
    metrics = summary.get("metrics") or summary
    by_stage: dict[str, dict[int, float]] = {"test": {}, "val": {}}
    for key, value in metrics.items():
        match = DEPTH_KEY.match(key)
        if match and value is not None and math.isfinite(float(value)):
            by_stage[match.group(1)][int(match.group(2))] = float(value)
    return by_stage["test"] or by_stage["val"]


def mean_profile(jobs: list[dict[str, Any]]) -> dict[int, tuple[float, Optional[float], int]]:
    """Per depth bucket: mean accuracy over the jobs (seeds), sample std (None for one job), job count."""
    values: dict[int, list[float]] = {}
    for job in jobs:
        for bucket, accuracy in depth_profile(job).items():
            values.setdefault(bucket, []).append(accuracy)
    return {
        bucket: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else None, len(v))
        for bucket, v in sorted(values.items())
    }


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion measured on ``n`` samples."""
    if n <= 0:
        return 0.0, 1.0
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bucket_range(bucket: int, num_buckets: int) -> str:
    """'0-10 %' for bucket 0 of 10: where in the video that bucket's evidence lies."""
    low, high = 100 * bucket / num_buckets, 100 * (bucket + 1) / num_buckets
    return f"{low:.0f}-{high:.0f} %"


def depth_table_markdown(variant: str, lengths: list[int], profiles: dict[int, dict[int, tuple]],
                         chance: Optional[float]) -> list[str]:
    """Markdown lines: one row per depth bucket, one column per length, mean ± std over seeds."""
    buckets = sorted({b for p in profiles.values() for b in p})
    if not buckets:
        return []
    num_buckets = max(buckets) + 1
    lines = [f"### {variant}", "",
             "| evidence depth (0 % = first frame) | " + " | ".join(f"{n:,} tokens" for n in lengths) + " |",
             "|---|" + "---|" * len(lengths)]
    for bucket in buckets:
        cells = []
        for n in lengths:
            entry = profiles.get(n, {}).get(bucket)
            if entry is None:
                cells.append("–")
                continue
            mean, std, _ = entry
            cells.append(f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else ""))
        lines.append(f"| {bucket_range(bucket, num_buckets)} | " + " | ".join(cells) + " |")
    if chance is not None:
        lines += ["", f"Chance: {chance:.3f}."]
    return lines + [""]


def write_heatmaps(variants: list[str], lengths: list[int], profiles: dict[str, dict[int, dict[int, tuple]]],
                   path: Path, chance: Optional[float], caption: str) -> Optional[Path]:
    """One heatmap per variant (depth bucket down, length across, mean accuracy as colour) in one figure."""
    drawn = [v for v in variants if any(profiles.get(v, {}).get(n) for n in lengths)]
    if not drawn or not lengths:
        return None
    import numpy as np

    from .figures import _pyplot, save_figure  # here: figures imports this module

    plt = _pyplot()
    num_buckets = 1 + max(b for v in drawn for p in profiles[v].values() for b in p)
    cols = min(3, len(drawn))
    rows = -(-len(drawn) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 1.2, 3.6 * rows + 0.8), squeeze=False,
                             constrained_layout=True)
    image = None
    for ax, variant in zip(axes.flat, drawn):
        grid = np.full((num_buckets, len(lengths)), np.nan)
        for j, n in enumerate(lengths):
            for bucket, (mean, _, _) in profiles[variant].get(n, {}).items():
                grid[bucket, j] = mean
        image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", origin="upper")
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if value > 0.6 else "white")
        ax.set_title(variant, fontsize=10)
        ax.set_xticks(range(len(lengths)), [f"{n:,}" for n in lengths], fontsize=7, rotation=30)
        ax.set_yticks(range(num_buckets), [bucket_range(b, num_buckets) for b in range(num_buckets)], fontsize=6)
        ax.set_xlabel("level-2 tokens", fontsize=8)
        ax.set_ylabel("evidence depth", fontsize=8)
    for ax in list(axes.flat)[len(drawn):]:
        ax.axis("off")
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label("accuracy" + (f" (chance {chance:.2f})" if chance is not None else ""))
        if chance is not None:
            bar.ax.axhline(chance, color="red", linewidth=1.5)
    fig.suptitle("Accuracy by evidence depth and sequence length", fontsize=11)
    return save_figure(fig, path, caption)  # the caption wrapped under the axes, as every other plot's
