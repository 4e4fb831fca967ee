"""The ceilings the performance notes measure kernels against: a large dense matmul and a large memory copy.

``docs/PERFORMANCE.md`` says for each mechanism whether arithmetic or memory traffic bounds it; these two numbers,
measured on the card at hand rather than taken from a data sheet, are the yardsticks.
"""

from __future__ import annotations

import datetime
import statistics
from typing import Any

import torch

from .measure import device_name, time_calls

DEFAULTS = {"cuda": {"matmul_size": 8192, "copy_gib": 4.0}, "cpu": {"matmul_size": 1024, "copy_gib": 0.25}}


def matmul_tflops(device: str, size: int, dtype: torch.dtype, repeats: int) -> float:
    """TFLOP/s of ``size × size @ size × size`` in ``dtype`` (median of ``repeats`` calls after one warm-up)."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(size, size, device=device, dtype=dtype)
    step = lambda: torch.matmul(a, b, out=out)  # noqa: E731
    step()
    milliseconds = statistics.median(time_calls(step, device, repeats))
    return 2 * size**3 / (milliseconds * 1e-3) / 1e12


def copy_gbps(device: str, gib: float, repeats: int) -> float:
    """GB/s of a device-to-device copy of ``gib`` GiB, counting the bytes read and the bytes written."""
    source = torch.empty(int(gib * 2**30) // 4, device=device, dtype=torch.float32)
    target = torch.empty_like(source)
    step = lambda: target.copy_(source)  # noqa: E731
    step()
    milliseconds = statistics.median(time_calls(step, device, repeats))
    return 2 * source.numel() * 4 / (milliseconds * 1e-3) / 1e9


def _significant(value: float) -> float:
    return float(f"{value:.4g}")


def measure_ceilings(device: str, matmul_size: int, copy_gib: float, repeats: int = 10) -> dict[str, Any]:
    """Both ceilings on ``device``, with what they were measured on."""
    if matmul_size <= 0 or copy_gib <= 0 or repeats <= 0:
        raise ValueError(f"matmul_size, copy_gib and repeats must be positive, got {matmul_size}, {copy_gib}, {repeats}")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    return {
        "device": device_name(device),
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "matmul": {"size": matmul_size, "dtype": str(dtype).removeprefix("torch."),
                   "tflops": _significant(matmul_tflops(device, matmul_size, dtype, repeats))},
        "copy": {"gib": copy_gib, "gbps": _significant(copy_gbps(device, copy_gib, repeats))},
        "repeats": repeats,
    }
