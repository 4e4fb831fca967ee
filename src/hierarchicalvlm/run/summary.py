"""``<job dir>/summary.json``: what one job was, how it ended and what it measured.

The file is rewritten atomically at each change of status, so a reader, a crash or a re-run never sees half a
file. A job is ``running`` from its start, then ends as

* ``completed``;
* ``failed``: an exception (out of memory, a config error...), kept in ``error``;
* ``diverged``: training stopped at a non-finite loss or gradient ("non-finite loss at step N (epoch E)");
* ``interrupted``: SIGTERM or SIGINT stopped it (``last.ckpt`` saved at that step); a sweep run again resumes it.

A job killed outright (``kill -9``, a lost node) stays ``running``. A sweep re-run reads the file to skip
completed jobs; the report reads it to fill its tables.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from hierarchicalvlm.run.result import RunResult

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
DIVERGED, INTERRUPTED = "diverged", "interrupted"
STATUSES = (RUNNING, COMPLETED, FAILED, DIVERGED, INTERRUPTED)
TRACEBACK_LINES = 20
MESSAGE_CHARS = 2000


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN) and anything unknown by its string."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(_json_safe(data), f, indent=2, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_summary(job_dir: Path) -> Optional[dict[str, Any]]:
    """The job's summary, or None when there is none (or it cannot be read: the job then counts as unfinished)."""
    path = Path(job_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log.warning("ignoring unreadable %s (%s)", path, err)
        return None
    return data if isinstance(data, dict) and data.get("status") in STATUSES else None


def error_record(err: BaseException) -> dict[str, Any]:
    """Type, message and the last lines of the traceback of an exception."""
    lines = "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip().splitlines()
    return {
        "type": type(err).__name__,
        "message": str(err)[:MESSAGE_CHARS],
        "traceback_tail": lines[-TRACEBACK_LINES:],
    }


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config with interpolations resolved (unresolved where that fails, e.g. a broken interpolation)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception:  # noqa: BLE001 - a broken config is still worth recording as written
        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def device_name(device: Optional[torch.device]) -> str:
    """Human name of the device a job ran on: the GPU model, or the CPU and its thread count."""
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine() or "unknown"
    return f"cpu ({cpu}, {torch.get_num_threads()} threads)"


class JobSummary:
    """The summary of one job, written to ``<job_dir>/summary.json`` at each status change."""

    def __init__(self, job_dir: Path, identity: dict[str, Any], config: dict[str, Any], **extra: Any) -> None:
        self.path = Path(job_dir) / SUMMARY_FILE
        self.data: dict[str, Any] = {
            "status": RUNNING,
            **identity,
            "job_dir": str(Path(job_dir)),
            **extra,
            "started_at": now_iso(),
            "ended_at": None,
            "duration_s": None,
            "device": None,
            "metrics": {},
            "throughput": {},
            "peak_memory": None,
            "num_parameters": None,
            "error": None,
            "config": config,
        }
        self._started = datetime.now(timezone.utc)

    def write(self) -> None:
        """Write the file (from the global rank-0 process only, under data parallelism)."""
        if getattr(rank_zero_only, "rank", 0) == 0:
            write_json_atomic(self.path, self.data)

    def start(self) -> None:
        self.write()

    def _finish(self, status: str, result: RunResult, metrics: dict[str, float]) -> None:
        ended = datetime.now(timezone.utc)
        self.data.update(
            status=status,
            ended_at=ended.isoformat(timespec="seconds"),
            duration_s=round((ended - self._started).total_seconds(), 3),
            device=device_name(result.device),
            metrics=dict(metrics),
            throughput=dict(result.throughput),
            peak_memory=result.peak_memory,
            num_parameters=result.num_parameters,
        )
        self.write()

    def complete(self, result: RunResult) -> None:
        self._finish(COMPLETED, result, result.metrics)

    def fail(self, err: BaseException, result: RunResult, status: str = FAILED) -> None:
        """End the job as ``status`` (``failed``, ``diverged`` or ``interrupted``), keeping ``err`` as its reason and
        what the run measured before it stopped (no final metrics)."""
        self.data["error"] = error_record(err)
        self._finish(status, result, {})
