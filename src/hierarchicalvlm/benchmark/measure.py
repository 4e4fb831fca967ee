"""Measuring cells: timing, memory, fresh-process isolation, and the sweep over cases and lengths."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from .cases import (
    SSD_CORE_SHAPE,
    WORKLOAD_BUILDERS,
    CaseSpec,
    Workload,
    allow_recompiles,
    check_baseline_agreement,
    first_line,
    flex_mask_mod,
    plan_cases,
    specialize_every_length,
)
from .settings import BenchSettings, available_mechanisms, knob_summary, validate_settings

FULL_FASTEST = "full (fastest)"
# Worker processes import this module by name (also when the CLI runs as ``python -m hierarchicalvlm.benchmark``).
_MODULE = "hierarchicalvlm.benchmark.measure"
RESULT_PREFIX = "BENCH_CELL "  # the line of ``--single`` output that carries the JSON result
TINY_LENGTH = 64  # length of the library warm-up call before a CPU memory measurement


@dataclasses.dataclass
class CellResult:
    """One (case, length) measurement; also one row of ``results.csv``."""

    mechanism: str
    kind: str
    scope: str
    length: int
    batch: int
    dtype: str
    device: str
    fwd_bwd_ms: float = math.nan
    peak_mib: float = math.nan
    activation_mib: float = math.nan
    memory: str = ""
    status: str = "ok"
    torch: str = torch.__version__
    date: str = ""
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclasses.dataclass
class BenchmarkReport:
    """A finished run: its settings, one row per cell (plus derived rows), run metadata, baselines left out."""

    settings: BenchSettings
    rows: list[CellResult]
    meta: dict[str, Any]
    not_run: dict[str, str]


def device_name(device: str) -> str:
    """GPU model from CUDA, or the CPU model from /proc/cpuinfo plus the core count."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model} ({cores} cores)"


def slugify(text: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"`` (the default results folder)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


QUEUED_TIMING = "CUDA events between calls queued back to back, one synchronisation at the end"
SYNCHRONIZED_TIMING = "CUDA events around each call, a synchronisation after each"  # meta.json without "timing"


def time_calls(step: Callable[[], None], device: str, repeats: int, synchronize_each: bool = False) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of an already warmed-up ``step``.

    On CUDA the calls are queued back to back, as a training loop issues its steps, with an event between two calls
    and one synchronisation at the end (as ``triton.testing.do_bench`` does): a call's time is the device's, and the
    host's Python and kernel launches count only where they take longer than the device's work (the queue runs
    dry). ``synchronize_each`` waits for the device after every call instead (the method of the tables until
    2026-12-01), so each call starts from an idle device and its host time up to the first kernels is timed too.
    """
    if device != "cuda":
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            step()
            times.append((time.perf_counter() - begin) * 1e3)
        return times
    events = [torch.cuda.Event(enable_timing=True) for _ in range(repeats + 1)]
    if synchronize_each:
        times = []
        for _ in range(repeats):
            events[0].record()
            step()
            events[1].record()
            torch.cuda.synchronize()
            times.append(events[0].elapsed_time(events[1]))
        return times
    events[0].record()
    for index in range(repeats):
        step()
        events[index + 1].record()
    torch.cuda.synchronize()
    return [before.elapsed_time(after) for before, after in zip(events, events[1:])]


def _max_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def measure_cuda_memory(step: Callable[[], None]) -> tuple[float, float]:
    """``(raw peak, peak minus what was allocated before)`` in MiB over one call of ``step``."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    return peak / 2**20, (peak - before) / 2**20


def _current_rss_mib() -> float:
    """Resident set size now (Linux ``/proc/self/statm``); the peak so far where that file does not exist."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return _max_rss_mib()
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_host_memory(step: Callable[[], None]) -> tuple[float, float]:
    """``(peak RSS after, peak RSS after - RSS before)`` in MiB over one call of ``step``.

    The peak RSS is a high-water mark that cannot be reset, so this is the step's host memory only in a process
    that has not been bigger before: a fresh one (see :func:`run_cell`).
    """
    before = _current_rss_mib()
    step()
    after = _max_rss_mib()
    return after, max(0.0, after - before)  # RSS can shrink a little (freed pages returned)


def batch_for(length: int, batch_tokens: int) -> int:
    """Sequences per step so that every length processes ``batch_tokens`` tokens (at least one sequence)."""
    return max(1, batch_tokens // length)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _free_memory(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def empty_result(spec: CaseSpec, settings: BenchSettings, length: int, status: str, note: str = "") -> CellResult:
    """A row without measurements (filled in by :func:`run_cell`, or kept for skipped / failed cells)."""
    return CellResult(spec.name, spec.kind, spec.scope, length, batch_for(length, settings.batch_tokens),
                      settings.precision, device_name(settings.device), status=status, date=_now(), note=note)


def run_cell(spec: CaseSpec, settings: BenchSettings, length: int, fresh_process: bool) -> CellResult:
    """Measure one (case, length) cell; errors become a status (``OOM``, ``error: ...``), never an exception.

    ``fresh_process``: this process ran nothing before, so on CPU the peak RSS during the first full-size step
    minus the RSS before it is the step's host memory.  Otherwise CPU memory is not reported.
    """
    result = empty_result(spec, settings, length, "ok")
    device = settings.device
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    workload: Optional[Workload] = None
    build = WORKLOAD_BUILDERS[spec.family]
    try:
        if fresh_process and device == "cpu":
            # One tiny call of the same case first: loads the libraries and kernels it uses (~10-30 MiB that stay
            # resident), so the measured growth is the full-size step's own memory.
            build(spec, settings, min(length, TINY_LENGTH), 1).step()
            _free_memory(device)
        workload = build(spec, settings, length, result.batch)
        if device == "cuda":
            for _ in range(settings.warmup):  # the first call compiles/autotunes; allocations settle
                workload.step()
            result.peak_mib, result.activation_mib = measure_cuda_memory(workload.step)
            result.memory = "cuda allocator peak during one warm step; activation = peak - (inputs + weights)"
        else:
            if fresh_process:
                result.peak_mib, result.activation_mib = measure_host_memory(workload.step)  # = first warm-up call
                result.memory = "host: peak RSS; activation = peak RSS over the first full-size fwd+bwd - RSS before"
            else:
                workload.step()
                result.memory = "not measured (in-process run; use --isolation process)"
            for _ in range(settings.warmup - 1):
                workload.step()
        result.fwd_bwd_ms = statistics.median(time_calls(workload.step, device, settings.repeats))
    except Exception as err:  # noqa: BLE001 - a failing cell is a result, the sweep goes on
        result.status = "OOM" if _is_out_of_memory(err) else f"error: {type(err).__name__}: {first_line(err)}"
        result.fwd_bwd_ms = result.peak_mib = result.activation_mib = math.nan
    finally:
        del workload
        _free_memory(device)
    return result


def profile_cell(spec: CaseSpec, settings: BenchSettings, length: int, top: int) -> str:
    """The ``top`` kernels and operations by device time (host time on CPU) in one warm step of a cell: what bounds
    it. On CUDA the host's operations are recorded too, so each kernel can be traced to the operation that ran it."""
    from torch.profiler import ProfilerActivity, profile

    workload = WORKLOAD_BUILDERS[spec.family](spec, settings, length, batch_for(length, settings.batch_tokens))
    for _ in range(max(1, settings.warmup)):
        workload.step()
    cuda = settings.device == "cuda"
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]) as prof:
        workload.step()
        if cuda:
            torch.cuda.synchronize()
    key = "cuda_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=top, max_name_column_width=100)


_FORKSERVER: Optional[Any] = None


def _forkserver_context():
    """A forkserver that has imported torch and this package once; each cell forks a fresh child from it."""
    global _FORKSERVER
    if _FORKSERVER is None:
        _FORKSERVER = multiprocessing.get_context("forkserver")
        _FORKSERVER.set_forkserver_preload(["torch", "hydra.utils", "hierarchicalvlm.attention", _MODULE])
    return _FORKSERVER


def _process_worker(spec: CaseSpec, settings: BenchSettings, length: int, connection) -> None:
    try:
        connection.send(dataclasses.asdict(run_cell(spec, settings, length, fresh_process=True)))
    finally:
        connection.close()


def run_cell_in_fresh_process(spec: CaseSpec, settings: BenchSettings, length: int) -> CellResult:
    """Run a cell in a child forked from a pre-imported server: a fresh process without re-importing torch."""
    context = _forkserver_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_process_worker, args=(spec, settings, length, sender))
    process.start()
    sender.close()
    payload = None
    timed_out = not receiver.poll(settings.cell_timeout)
    if not timed_out:
        with contextlib.suppress(EOFError):
            payload = receiver.recv()
    if timed_out:
        process.kill()
    process.join()
    receiver.close()
    if payload is not None:
        return CellResult(**payload)
    if timed_out:
        return empty_result(spec, settings, length, f"timeout (> {settings.cell_timeout:g} s)")
    status = "OOM (killed)" if process.exitcode == -9 else f"failed (exit code {process.exitcode})"
    return empty_result(spec, settings, length, status)


def settings_to_argv(settings: BenchSettings) -> list[str]:
    """CLI arguments that rebuild ``settings`` (for ``--single`` subprocesses)."""
    argv = [
        "--device", settings.device, "--lengths", ",".join(map(str, settings.lengths)), "--dim", str(settings.dim),
        "--heads", str(settings.heads), "--batch-tokens", str(settings.batch_tokens), "--precision", settings.precision,
        "--warmup", str(settings.warmup), "--repeats", str(settings.repeats), "--conf-dir", settings.conf_dir,
        "--seed", str(settings.seed),
    ]
    if settings.threads:
        argv += ["--threads", str(settings.threads)]
    for name, knobs in settings.overrides.items():
        for key, value in knobs.items():
            argv += ["--set", f"{name}.{key}={json.dumps(value)}"]
    if settings.mamba_ssm_src:
        argv += ["--mamba-ssm-src", settings.mamba_ssm_src]
    argv += ["--fla-autotune-configs", str(settings.fla_autotune_configs)]
    if settings.compile_layers:
        argv.append("--compile-layers")
    return argv


def run_cell_in_subprocess(spec: CaseSpec, settings: BenchSettings, length: int) -> CellResult:
    """Run a cell as ``python -m hierarchicalvlm.benchmark --single ...`` (re-imports torch: slower, fully fresh)."""
    command = [sys.executable, "-m", "hierarchicalvlm.benchmark", "--single", "--mechanism", spec.name,
               "--length", str(length), *settings_to_argv(settings)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=settings.cell_timeout)
    except subprocess.TimeoutExpired:
        return empty_result(spec, settings, length, f"timeout (> {settings.cell_timeout:g} s)")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return CellResult(**json.loads(line[len(RESULT_PREFIX):]))
    status = "OOM (killed)" if done.returncode == -9 else f"failed (exit code {done.returncode})"
    last_error_line = (done.stderr.strip().splitlines() or [""])[-1][:200]
    return empty_result(spec, settings, length, status, note=last_error_line)


def run_one(spec: CaseSpec, settings: BenchSettings, length: int) -> CellResult:
    if settings.isolation == "process":
        return run_cell_in_fresh_process(spec, settings, length)
    if settings.isolation == "subprocess":
        return run_cell_in_subprocess(spec, settings, length)
    return run_cell(spec, settings, length, fresh_process=False)


def fastest_full_rows(rows: list[CellResult]) -> list[CellResult]:
    """One ``full (fastest)`` row per length: the quickest SDPA backend that ran (``OOM`` if none did)."""
    backends = [r for r in rows if r.mechanism.startswith("full[")]
    derived = []
    for length in sorted({r.length for r in backends}):
        at_length = [r for r in backends if r.length == length]
        ran = [r for r in at_length if r.ok]
        if ran:
            best = min(ran, key=lambda r: r.fwd_bwd_ms)
            row = dataclasses.replace(best, mechanism=FULL_FASTEST, note=f"fastest backend: {best.mechanism}")
        else:
            statuses = sorted({r.status for r in at_length})
            row = dataclasses.replace(
                at_length[0], mechanism=FULL_FASTEST, status="OOM" if "OOM" in statuses else statuses[0],
                fwd_bwd_ms=math.nan, peak_mib=math.nan, activation_mib=math.nan, note="no backend ran",
            )
        derived.append(row)
    return derived


def _format_cell_line(result: CellResult) -> str:
    if not result.ok:
        return f"{result.mechanism:>24} n={result.length:<6} {result.status}"
    memory = "" if math.isnan(result.activation_mib) else f"  {result.activation_mib:9.1f} MiB"
    return f"{result.mechanism:>24} n={result.length:<6} batch={result.batch:<4} {result.fwd_bwd_ms:10.1f} ms{memory}"


def run_benchmark(
    settings: BenchSettings,
    log: Callable[[str], None] = print,
    command: Optional[str] = None,
    progress: Optional[Callable[[BenchmarkReport], None]] = None,
) -> BenchmarkReport:
    """Run every planned case over every length (case-major), then add the derived rows.

    ``command``: the command line recorded in ``meta.json`` (default: this process's ``sys.argv``).
    ``progress``: called after every cell with the run so far (``meta["partial"]`` True), e.g. to save it, so that
    a run stopped by a time limit keeps its measured cells.
    """
    validate_settings(settings)
    cases, not_run = plan_cases(settings)
    if settings.device == "cuda":
        allow_recompiles()
        specialize_every_length()
    started = time.perf_counter()
    # what a partial save records (machine, settings, knobs): collected once, its wall time updated per cell
    run_meta = {**collect_meta(settings, cases, not_run, 0.0), "command": command, "partial": True} if progress else {}
    rows: list[CellResult] = []
    for spec in cases:
        if settings.device == "cuda":
            # Each case compiles from scratch, every length with static shapes (specialize_every_length): layers
            # share compiled functions (FlexAttention), and a case's graphs are of no use to the next one.
            torch._dynamo.reset()
        skip_reason: Optional[str] = None
        for length in settings.lengths:
            cell_seconds: Optional[float] = None
            if skip_reason:
                result = empty_result(spec, settings, length, "skipped", note=skip_reason)
            else:
                cell_started = time.perf_counter()
                result = run_one(spec, settings, length)
                cell_seconds = time.perf_counter() - cell_started
                threshold = settings.skip_slower_than_ms
                if threshold is not None and result.ok and result.fwd_bwd_ms > threshold:
                    skip_reason = f"{spec.name} took {result.fwd_bwd_ms:.0f} ms > {threshold:g} ms at n={length}"
            rows.append(result)
            # the cell's wall time, compilation and autotuning included: where a run's time limit goes
            log(_format_cell_line(result) + ("" if cell_seconds is None else f"  [{cell_seconds:.0f} s]"))
            if progress is not None:
                partial_meta = {**run_meta, "wall_seconds": round(time.perf_counter() - started, 1)}
                progress(BenchmarkReport(settings, list(rows), partial_meta, not_run))
    rows += fastest_full_rows(rows)
    meta = collect_meta(settings, cases, not_run, time.perf_counter() - started)
    meta["command"] = command or shlex.join([Path(sys.argv[0]).name if sys.argv[0] else "python", *sys.argv[1:]])
    if settings.device == "cuda" and settings.baselines:
        meta["agreement"] = check_baseline_agreement(settings, {c.name for c in cases})
    return BenchmarkReport(settings, rows, meta, not_run)


def collect_meta(
    settings: BenchSettings, cases: list[CaseSpec], not_run: dict[str, str], seconds: float
) -> dict[str, Any]:
    """What ``meta.json`` records: the machine and software, the settings, the effective knobs, what did not run."""
    meta: dict[str, Any] = {
        "device": device_name(settings.device),
        "device_type": settings.device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if settings.device == "cuda" else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": settings.threads or torch.get_num_threads(),
        "date": _now(),
        "wall_seconds": round(seconds, 1),
        "settings": dataclasses.asdict(settings),
        "mechanism_knobs": {name: knob_summary(name, settings) for name in available_mechanisms(settings.conf_dir)},
        "cases": [dataclasses.asdict(c) for c in cases],
        "not_run": not_run,
    }
    with contextlib.suppress(ImportError):
        import triton

        meta["triton"] = triton.__version__
    if settings.device == "cuda":
        planned = {c.name for c in cases}
        meta["flex_masks"] = {name: flex_mask_mod(name, settings)[1]
                              for name in ("flex_local_global", "flex_strided") if name in planned}
        meta["ssd_core_shape"] = SSD_CORE_SHAPE
        meta["timing"] = QUEUED_TIMING
    return meta
