"""What a run hands back: its metrics and its measurements (device, throughput, peak memory, best checkpoint).

:func:`hierarchicalvlm.run.pipeline.run` returns a :class:`RunResult`; when it fails after its trainer exists, the
exception carries the measurements made so far (:func:`attach_result`, read back by :func:`partial_result`), so
a failed or diverged job still records how fast it ran and what memory it took.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import lightning as L
import torch

from hierarchicalvlm.callbacks.memory import peak_memory
from hierarchicalvlm.callbacks.throughput import LongRangeThroughputMonitor

_RESULT_ATTRIBUTE = "hvlm_run_result"


@dataclass
class RunResult:
    """The outcome of one run: final metrics, the device it ran on, its steady-state throughput (possibly partial),
    its peak memory (:meth:`PeakMemory.as_dict`), its best checkpoint (None when none was written) and the model's
    parameter count (the report's model size)."""

    metrics: dict[str, float] = field(default_factory=dict)
    device: Optional[torch.device] = None
    throughput: dict[str, Any] = field(default_factory=dict)
    peak_memory: dict[str, Any] = field(default_factory=dict)
    best_checkpoint: Optional[str] = None
    num_parameters: Optional[int] = None


def throughput_of(trainer: L.Trainer) -> dict[str, Any]:
    """The throughput monitor's summary (its running summary when the run stopped early); {} without one."""
    monitor = next((cb for cb in trainer.callbacks if isinstance(cb, LongRangeThroughputMonitor)), None)
    if monitor is None:
        return {}
    return monitor.summary or monitor.current_summary()


def measure(trainer: Optional[L.Trainer], metrics: Optional[dict[str, float]] = None,
            best_checkpoint: Optional[str] = None) -> RunResult:
    """The :class:`RunResult` of a run whose trainer is ``trainer`` (None: it failed before one existed)."""
    device = trainer.strategy.root_device if trainer is not None else None
    return RunResult(
        metrics=dict(metrics or {}),
        device=device,
        throughput=throughput_of(trainer) if trainer is not None else {},
        peak_memory=peak_memory(device or torch.device("cpu")).as_dict(),
        best_checkpoint=best_checkpoint,
        num_parameters=parameter_count(trainer),
    )


def parameter_count(trainer: Optional[L.Trainer]) -> Optional[int]:
    """Every parameter of the trained module (None before a module is attached)."""
    module = getattr(trainer, "lightning_module", None) if trainer is not None else None
    return None if module is None else sum(p.numel() for p in module.parameters())


def attach_result(err: BaseException, result: RunResult) -> None:
    """Let ``err`` carry the measurements of the run it stopped."""
    setattr(err, _RESULT_ATTRIBUTE, result)


def partial_result(err: BaseException) -> RunResult:
    """The measurements ``err`` carries, or those of a run that measured nothing (it failed before its trainer
    existed, e.g. on a config error); peak memory is read now either way."""
    result = getattr(err, _RESULT_ATTRIBUTE, None)
    if result is not None:
        return result
    return measure(None)
