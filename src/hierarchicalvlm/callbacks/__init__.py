"""Lightning callbacks: long-range throughput, FLOPs and peak-memory measurement."""

from .flops import measure_training_flops
from .memory import PeakMemory, peak_memory, reset_peak_memory
from .throughput import LongRangeThroughputMonitor, device_peak_flops

__all__ = [
    "LongRangeThroughputMonitor",
    "PeakMemory",
    "device_peak_flops",
    "measure_training_flops",
    "peak_memory",
    "reset_peak_memory",
]
