"""Lightning callbacks: long-range throughput, FLOPs and peak-memory measurement; the reliability guards
(non-finite losses, signals, faithful resume, best checkpoint across resumes). The callback that records a
checkpoint's model is part of the run (:mod:`hierarchicalvlm.run.model_identity`)."""

from .checkpoint import BestCheckpoint
from .flops import measure_training_flops
from .interrupt import GracefulStop, RunInterrupted
from .memory import PeakMemory, peak_memory, reset_peak_memory
from .nonfinite import NonFiniteError, NonFiniteGuard
from .resume import FaithfulResume
from .throughput import LongRangeThroughputMonitor, device_peak_flops

__all__ = [
    "BestCheckpoint",
    "FaithfulResume",
    "GracefulStop",
    "NonFiniteError",
    "NonFiniteGuard",
    "RunInterrupted",
    "LongRangeThroughputMonitor",
    "PeakMemory",
    "device_peak_flops",
    "measure_training_flops",
    "peak_memory",
    "reset_peak_memory",
]
