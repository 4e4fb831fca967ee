"""Peak memory of a job: device memory on a GPU, the process's resident set (host RAM) elsewhere.

The two are different quantities and are always reported with their ``kind`` so a CPU run's host
RSS is never mistaken for accelerator memory.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch

MemoryKind = Literal["device", "host_rss"]
GIB = 1024**3


@dataclass(frozen=True)
class PeakMemory:
    """A peak memory reading: ``bytes`` of ``kind`` (``device`` = ``torch.cuda.max_memory_allocated``,
    ``host_rss`` = the process's peak resident set size)."""

    bytes: int
    kind: MemoryKind

    @property
    def gib(self) -> float:
        return self.bytes / GIB

    def as_dict(self) -> dict[str, object]:
        return {"bytes": self.bytes, "gib": round(self.gib, 4), "kind": self.kind}


def memory_kind(device: torch.device) -> MemoryKind:
    return "device" if device.type == "cuda" else "host_rss"


def host_peak_rss_bytes() -> int:
    """Peak resident set size of this process (``getrusage``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def host_current_rss_bytes() -> Optional[int]:
    """Current resident set size (Linux ``/proc/self/statm``), None where unavailable."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * resource.getpagesize()


def reset_host_peak_rss() -> bool:
    """Restart the peak-RSS high-water mark at the current RSS (Linux: ``/proc/self/clear_refs``).

    Several jobs share one process under Hydra's basic launcher; without this, a job would report the
    peak of an earlier, bigger job. Returns False where the kernel does not allow it (the peak then
    covers the whole process lifetime).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def release_host_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so a later
    RSS reading is not inflated by memory an earlier job no longer uses."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh peak measurement on ``device`` (CUDA peak stats, or the host RSS high-water mark)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_host_peak_rss()


def peak_memory(device: torch.device) -> PeakMemory:
    """Peak memory since the last :func:`reset_peak_memory` on ``device``."""
    if device.type == "cuda":
        return PeakMemory(int(torch.cuda.max_memory_allocated(device)), "device")
    return PeakMemory(host_peak_rss_bytes(), "host_rss")


def reset_all_peaks() -> None:
    """Start fresh peak measurements on the host and, if present, the current GPU (before the device is known)."""
    reset_peak_memory(torch.device("cpu"))
    if torch.cuda.is_available():
        reset_peak_memory(torch.device("cuda", torch.cuda.current_device()))


def free_memory() -> None:
    """Give memory back between jobs or trials: collect garbage (a failed job's tensors can survive in its
    traceback until then), empty the CUDA cache and trim the host heap."""
    release_host_memory()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
