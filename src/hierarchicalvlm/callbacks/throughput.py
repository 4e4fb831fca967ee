"""Training throughput through the long-range level: tokens/s, samples/s, step time, FLOPs/s, MFU, peak memory.

:class:`LongRangeThroughputMonitor` extends Lightning's ``ThroughputMonitor``:

* a *token* is a level-2 token (``pl_module.long_range_tokens(batch)``: frames x tokens per frame x
  batch), so tokens/s compares attention mechanisms at equal video length;
* the first ``warmup_steps`` training batches, and any batch during which ``torch.compile`` built a new
  graph, are left out of every figure (their time too); so are validation and epoch boundaries;
* FLOPs per batch are measured once (:func:`~hierarchicalvlm.callbacks.flops.measure_training_flops`)
  and MFU is reported only where the device's peak FLOP rate is known (never on CPU);
* every ``log_every_n_steps`` steady-state batches it logs, to every active logger::

      throughput/tokens_per_sec   throughput/samples_per_sec   throughput/step_time_s
      throughput/flops_per_sec    throughput/mfu (GPU with a known peak only)
      memory/device_peak_gib (GPU)  or  memory/host_peak_rss_gib (CPU: the process's resident set, host RAM)

  averaged over the last ``log_every_n_steps`` batches;
* at the end of training it stores :attr:`summary` (median and mean over all steady-state batches) and
  logs it as ``summary/<name>``;
* when the training length changes (a length curriculum: ``data.curriculum``), the figures start afresh,
  warm-up and FLOP count included, so the summary describes the last length trained (the one validated).

Rates are wall-clock per training batch (data loading included) on this process, multiplied by the
world size under data parallelism; step time is per batch.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from typing import Any, Optional

import lightning as L
import torch
from lightning.fabric.utilities.throughput import _CUDA_FLOPS
from lightning.pytorch.callbacks import ThroughputMonitor
from lightning.pytorch.callbacks.throughput_monitor import _plugin_to_compute_dtype
from lightning.pytorch.trainer.states import RunningStage, TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from .flops import measure_training_flops, tensors_in
from .memory import peak_memory, reset_peak_memory

log = logging.getLogger(__name__)

TRAIN = RunningStage.TRAINING


def samples_in_batch(batch: Any) -> int:
    """Number of samples in a batch: the leading size of ``batch["frames"]`` (or of its first tensor)."""
    if isinstance(batch, dict) and torch.is_tensor(batch.get("frames")):
        return int(batch["frames"].shape[0])
    first = next(tensors_in(batch), None)
    if first is None or first.dim() == 0:
        raise ValueError("cannot tell the batch size: the batch holds no tensor with a leading batch dimension")
    return int(first.shape[0])


def device_peak_flops(device: torch.device, dtype: torch.dtype | str) -> Optional[int]:
    """The device's theoretical peak FLOP/s for ``dtype`` from Lightning's table, or None where unknown (CPU).

    Lightning does not recognise a plain ``"NVIDIA H200"`` name (its H200 rows need "SXM1"/"NVL1" in the
    name and quote the *with-sparsity* figure); an H200 SXM has the H100 SXM's tensor cores, so its dense
    peak is taken from Lightning's ``"h100 sxm"`` row. H200 NVL (lower clocks) stays unknown.
    """
    from lightning.fabric.utilities.throughput import get_available_flops

    if device.type != "cuda":
        return None
    flops = get_available_flops(device, dtype)
    if flops is not None:
        return flops
    name = torch.cuda.get_device_name(device).lower()
    if "h200" in name and "nvl" not in name:
        table = _CUDA_FLOPS["h100 sxm"]
        if dtype is torch.float32 and torch.get_float32_matmul_precision() != "highest":
            dtype = "tfloat32"
        return int(table[dtype]) if dtype in table else None
    return None


def compiled_graph_count() -> int:
    """Graphs ``torch.compile`` has built in this process so far (a change marks a compile step)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - torch without dynamo
        return 0
    return int(counters["stats"]["unique_graphs"])


@dataclass(frozen=True)
class StepRecord:
    """One steady-state training batch: wall seconds and what it processed."""

    seconds: float
    samples: int
    tokens: int
    flops: Optional[int]


def _median_and_mean(per_step: list[float], total_amount: float, total_seconds: float) -> tuple[float, float]:
    """Median of the per-batch rates and the time-weighted mean rate (total amount / total time)."""
    return statistics.median(per_step), total_amount / total_seconds


def summary_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a throughput summary as ``summary/<name>`` metrics; the peak memory is named
    after its kind (``summary/device_peak_gib`` or ``summary/host_peak_rss_gib``) so host RAM is never
    read as device memory."""
    prefix = "device_peak" if summary.get("peak_memory_kind") == "device" else "host_peak_rss"
    renamed = {"peak_memory_bytes": f"{prefix}_bytes", "peak_memory_gib": f"{prefix}_gib"}
    return {
        f"summary/{renamed.get(key, key)}": float(value)
        for key, value in summary.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class LongRangeThroughputMonitor(ThroughputMonitor):
    """Logs throughput through the long-range level; see the module docstring for the metrics.

    Args:
        log_every_n_steps: log the windowed figures every this many steady-state batches (>= 1).
        warmup_steps: first training batches of each ``fit`` left out of every figure (>= 1).
        measure_flops: measure FLOPs per batch (for FLOPs/s and MFU) on the first batch.
    """

    def __init__(self, log_every_n_steps: int = 10, warmup_steps: int = 5, measure_flops: bool = True) -> None:
        if not isinstance(log_every_n_steps, int) or log_every_n_steps < 1:
            raise ValueError(f"log_every_n_steps must be an integer >= 1, got {log_every_n_steps!r}")
        if not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise ValueError(
                f"warmup_steps must be an integer >= 1 (the first batch carries one-time costs such as the "
                f"FLOP count), got {warmup_steps!r}"
            )
        # the window holds one point more than the interval: the point that opens the interval
        super().__init__(batch_size_fn=samples_in_batch, length_fn=self._long_range_tokens,
                         window_size=log_every_n_steps + 1)
        self.log_every_n_steps = log_every_n_steps
        self.warmup_steps = warmup_steps
        self.measure_flops = measure_flops
        self.summary: dict[str, Any] = {}
        self._module: Optional[L.LightningModule] = None
        self._device = torch.device("cpu")
        self._world_size = 1
        self._reset_state()

    # --- state ----------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._steps: list[StepRecord] = []
        self._batches_seen = 0
        self._excluded_warmup = 0
        self._excluded_compile = 0
        self._prev_elapsed = 0.0
        self._graphs_at_batch_start = 0
        self._flops_measured = False
        self._train_length: Optional[int] = None

    def _long_range_tokens(self, batch: Any) -> int:
        assert self._module is not None
        return int(self._module.long_range_tokens(batch))

    def _now(self) -> float:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
        return time.perf_counter()

    # --- Lightning hooks --------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not callable(getattr(pl_module, "long_range_tokens", None)):
            raise ValueError(
                f"{type(self).__name__} needs {type(pl_module).__name__}.long_range_tokens(batch) "
                "(tokens through the long-range level); add it or remove the throughput callback"
            )
        super().setup(trainer, pl_module, stage)
        self._module = pl_module
        self._device = trainer.strategy.root_device
        self._world_size = trainer.world_size
        self.available_flops = device_peak_flops(self._device, _plugin_to_compute_dtype(trainer.precision_plugin))
        for throughput in self._throughputs.values():
            throughput.available_flops = self.available_flops
        if not hasattr(pl_module, "flops_per_batch"):
            pl_module.flops_per_batch = None  # set on the first training batch

    @rank_zero_only
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._reset_state()
        self.summary = {}
        reset_peak_memory(self._device)

    @rank_zero_only
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self.measure_flops and not self._flops_measured:
            self._flops_measured = True
            pl_module.flops_per_batch = measure_training_flops(
                pl_module, batch, trainer.precision_plugin.forward_context()
            )
            reset_peak_memory(self._device)  # the measurement's own memory is not the job's
        self._graphs_at_batch_start = compiled_graph_count()

    @rank_zero_only
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._batches_seen += 1
        if self._batches_seen <= self.warmup_steps:
            self._excluded_warmup += 1
            self._exclude_time_since_last_step()
            if self._batches_seen == self.warmup_steps:
                self._begin_steady_state(pl_module)
            return
        if compiled_graph_count() != self._graphs_at_batch_start:
            self._excluded_compile += 1
            self._exclude_time_since_last_step()
            return
        self._update(trainer, pl_module, batch, trainer.fit_loop.total_batch_idx + 1)
        elapsed = self._throughputs[TRAIN]._time[-1]
        flops = pl_module.flops_per_batch
        self._steps.append(StepRecord(
            seconds=elapsed - self._prev_elapsed,
            samples=samples_in_batch(batch),
            tokens=self._long_range_tokens(batch),
            flops=int(flops) if flops is not None else None,
        ))
        self._prev_elapsed = elapsed
        if len(self._steps) % self.log_every_n_steps == 0:
            trainer._logger_connector.log_metrics(self._interval_metrics())

    @rank_zero_only
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._exclude_time_since_last_step()  # dataloader restart, end-of-epoch checkpoints
        length_at = getattr(trainer.datamodule, "train_frames_at", None) if trainer.datamodule is not None else None
        length = length_at(trainer.current_epoch) if callable(length_at) else None
        if length is not None and self._train_length is not None and length != self._train_length:
            log.info("throughput: training length changed (%d -> %d frames); measuring afresh",
                     self._train_length, length)
            self._reset_state()
        self._train_length = length

    def on_validation_start(self, trainer: L.Trainer, *_: Any) -> None:
        """Validation is not measured (its FLOPs differ from a training batch's)."""

    def on_validation_batch_end(self, *_: Any, **__: Any) -> None:
        """Validation is not measured."""

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, *_: Any) -> None:
        if not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING and TRAIN in self._t0s:
            self._exclude_time_since_last_step()

    def on_test_start(self, *_: Any) -> None:
        """Testing is not measured."""

    def on_test_batch_end(self, *_: Any, **__: Any) -> None:
        """Testing is not measured."""

    def on_predict_start(self, *_: Any) -> None:
        """Prediction is not measured."""

    def on_predict_batch_end(self, *_: Any, **__: Any) -> None:
        """Prediction is not measured."""

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.summary = self.current_summary()
        if not self._steps:
            report = log.info if trainer.fast_dev_run else log.warning
            report(
                "throughput: no steady-state batch after %d warm-up and %d compile batches; "
                "train longer or lower warmup_steps", self._excluded_warmup, self._excluded_compile,
            )
        trainer._logger_connector.log_metrics(summary_metrics(self.summary))

    # --- measurements -------------------------------------------------------------------------------
    def _exclude_time_since_last_step(self) -> None:
        """Move the clock's origin so the time since the last measured batch does not count."""
        if TRAIN in self._t0s:
            self._t0s[TRAIN] = self._now() - self._prev_elapsed

    def _begin_steady_state(self, pl_module: L.LightningModule) -> None:
        """Empty the window and open it with a zero point, so the first interval's rates cover exactly
        ``log_every_n_steps`` steady-state batches."""
        self._throughputs[TRAIN].reset()
        self._lengths[TRAIN] = self._samples[TRAIN] = self._batches[TRAIN] = 0
        self._prev_elapsed = 0.0
        self._t0s[TRAIN] = self._now()
        known_flops = getattr(pl_module, "flops_per_batch", None) is not None
        self._throughputs[TRAIN].update(time=0.0, batches=0, samples=0, lengths=0, flops=0 if known_flops else None)

    def _interval_metrics(self) -> dict[str, float]:
        """The window's rates under explicit names, plus the peak memory so far."""
        window = self._throughputs[TRAIN].compute()
        global_or_device = lambda key: window.get(key, window.get(f"device/{key}"))  # noqa: E731
        metrics: dict[str, float] = {}
        if "device/batches_per_sec" in window:
            metrics["throughput/step_time_s"] = 1.0 / window["device/batches_per_sec"]
            metrics["throughput/samples_per_sec"] = global_or_device("samples_per_sec")
        if global_or_device("items_per_sec") is not None:
            metrics["throughput/tokens_per_sec"] = global_or_device("items_per_sec")
        if global_or_device("flops_per_sec") is not None:
            metrics["throughput/flops_per_sec"] = global_or_device("flops_per_sec")
        if "device/mfu" in window:
            metrics["throughput/mfu"] = window["device/mfu"]
        peak = peak_memory(self._device)
        metrics["memory/device_peak_gib" if peak.kind == "device" else "memory/host_peak_rss_gib"] = peak.gib
        return metrics

    def current_summary(self) -> dict[str, Any]:
        """Steady-state figures so far (also valid mid-run, e.g. when a job fails): medians over batches and
        time-weighted means, peak memory, and how many batches were left out."""
        peak = peak_memory(self._device)
        summary: dict[str, Any] = {
            "steady_steps": len(self._steps),
            "excluded_warmup_steps": self._excluded_warmup,
            "excluded_compile_steps": self._excluded_compile,
            "world_size": self._world_size,
            "peak_memory_bytes": peak.bytes,
            "peak_memory_gib": peak.gib,
            "peak_memory_kind": peak.kind,
            "available_flops": self.available_flops,
            "flops_per_batch": self._steps[-1].flops if self._steps else getattr(self._module, "flops_per_batch", None),
        }
        names = ("tokens_per_sec", "samples_per_sec", "step_time_s", "flops_per_sec", "mfu")
        summary.update({f"{name}_{stat}": None for name in names for stat in ("median", "mean")})
        summary["step_time_s_max"] = None
        if not self._steps:
            return summary
        seconds = [s.seconds for s in self._steps]
        total_seconds = sum(seconds)
        world = self._world_size
        summary["step_time_s_median"] = statistics.median(seconds)
        summary["step_time_s_mean"] = total_seconds / len(seconds)
        summary["step_time_s_max"] = max(seconds)  # a stall shows here, not in the median
        for name, amounts in (("tokens_per_sec", [s.tokens for s in self._steps]),
                              ("samples_per_sec", [s.samples for s in self._steps])):
            median, mean = _median_and_mean([a / t for a, t in zip(amounts, seconds)], sum(amounts), total_seconds)
            summary[f"{name}_median"], summary[f"{name}_mean"] = median * world, mean * world
        if all(s.flops is not None for s in self._steps):
            flops = [float(s.flops) for s in self._steps]  # type: ignore[arg-type]
            median, mean = _median_and_mean([f / t for f, t in zip(flops, seconds)], sum(flops), total_seconds)
            summary["flops_per_sec_median"], summary["flops_per_sec_mean"] = median * world, mean * world
            if self.available_flops:
                summary["mfu_median"], summary["mfu_mean"] = median / self.available_flops, mean / self.available_flops
        return summary
