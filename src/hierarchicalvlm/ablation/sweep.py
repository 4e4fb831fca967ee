"""A sweep as a table: :func:`load_sweep` reads every job of a multirun folder into a pandas DataFrame.

    from hierarchicalvlm.ablation import load_sweep
    jobs = load_sweep("logs/ablation/multiruns/long_seq_ablation")
    jobs[jobs.status == "completed"].groupby(["attention", "seq_len"]).accuracy.agg(["mean", "std", "count"])

One row per job (every ``summary.json`` under the folder, whatever its status): identity, status and error, the
swept config values (one column per key of the job folders' ``key=value,...`` names, typed from the job's
resolved config), the accuracy the report uses, every final metric under its logged name (``test/qa_acc``...),
the throughput summary, the per-batch spread of throughput and step time read from the job's
``csv/metrics.csv`` (quartiles of the logged windows), and, for a job that did not finish, its last logged
validation accuracy in columns of its own (``last_val_accuracy``, ``last_val_epoch``, ``last_step``): it is
never the final ``accuracy``. The report (:mod:`.report`) is built from this frame.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shlex
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from hierarchicalvlm.run.evaluation import override_key
from hierarchicalvlm.run.summary import SUMMARY_FILE

log = logging.getLogger(__name__)

ACCURACY_KEYS = ("test/qa_acc", "val/qa_acc")  # the first one a job has is its accuracy
CHANCE_KEYS = ("test/chance_acc", "val/chance_acc")  # the matching chance level, logged by the module
SAMPLE_KEYS = ("test/num_samples", "val/num_samples")
VAL_ACCURACY = "val/qa_acc"
METRICS_CSV = Path("csv") / "metrics.csv"
PER_BATCH = {"tokens_per_sec": "throughput/tokens_per_sec", "step_time_s": "throughput/step_time_s"}
STEP_IN_ERROR = re.compile(r"\bat step (\d+)")

IDENTITY = ("job", "override_dirname", "status", "attention", "num_frames", "seq_len", "seed", "memory", "tasks")
DERIVED = (
    "accuracy", "accuracy_metric", "chance_accuracy", "eval_samples",
    "last_val_accuracy", "last_val_epoch", "last_step",
    "tokens_per_sec_median", "tokens_per_sec_mean", "tokens_per_sec_q25", "tokens_per_sec_q75",
    "samples_per_sec_median", "step_time_s_median", "step_time_s_q25", "step_time_s_q75",
    "flops_per_sec_median", "mfu_median", "per_batch_windows",
    "peak_memory_gib", "peak_memory_kind", "num_parameters", "device", "duration_s", "attempt",
    "started_at", "ended_at", "error_type", "error_message",
)
INTEGERS = ("num_frames", "seq_len", "seed", "eval_samples", "last_val_epoch", "last_step", "per_batch_windows",
            "num_parameters", "attempt")
STRINGS = ("job", "override_dirname", "status", "attention", "tasks", "accuracy_metric", "peak_memory_kind",
           "device", "started_at", "ended_at", "error_type", "error_message")


# --- one job ------------------------------------------------------------------------------------
def split_overrides(name: str) -> dict[str, str]:
    """``'attention=full,data.num_frames=64,x=[1,2]'`` -> {key: value}; commas inside brackets, braces or quotes
    stay with their value. Parts without ``=`` are ignored."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(name):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    parts.append(name[start:])
    return dict(p.split("=", 1) for p in parts if "=" in p)


def job_overrides(override_dirname: Optional[str], folder: str) -> dict[str, str]:
    """The overrides that name a job (its ``override_dirname``, else its folder name), as written."""
    name = override_dirname or Path(folder).name
    return {override_key(key): value for key, value in split_overrides(str(name)).items()}


def config_value(config: Any, dotted: str) -> Any:
    """The scalar at ``a.b.c`` in a resolved config dict; None where absent or not a scalar (a config group)."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, (str, int, float, bool)) else None


def _finite(value: Any) -> Optional[float]:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def first_metric(metrics: dict[str, Any], keys: Iterable[str]) -> tuple[Optional[float], Optional[str]]:
    for key in keys:
        value = _finite(metrics.get(key))
        if value is not None:
            return value, key
    return None, None


def metrics_csv_of(job_dir: Path) -> Optional[Path]:
    """The job's CSV log (``csv/metrics.csv``, else the newest ``metrics.csv`` below the job), or None."""
    path = job_dir / METRICS_CSV
    if path.is_file():
        return path
    found = sorted(job_dir.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def steady_windows(summary: dict[str, Any]) -> Optional[int]:
    """How many logged throughput windows the summary's steady state spans (its steady batches over the
    callback's ``log_every_n_steps``): a length curriculum restarts the figures at each length, and the
    summary describes the last one. None where either number is unknown."""
    steps = (summary.get("throughput") or {}).get("steady_steps")
    every = config_value(summary.get("config") or {}, "callbacks.throughput.log_every_n_steps")
    return steps // every if isinstance(steps, int) and isinstance(every, int) and every > 0 else None


def logged_figures(job_dir: Path, windows: Optional[int] = None) -> dict[str, Any]:
    """From the job's metrics.csv: quartiles of the per-batch throughput windows (the last ``windows`` of
    them if given), the last validation accuracy with its epoch, and the last step logged ({} without a
    readable file)."""
    path = metrics_csv_of(job_dir)
    if path is None:
        return {}
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        log.warning("skipping unreadable %s (%s)", path, err)
        return {}
    figures: dict[str, Any] = {}
    for name, column in PER_BATCH.items():
        values = pd.to_numeric(frame.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        values = values.iloc[-windows:] if windows else values
        if len(values):
            figures[f"{name}_q25"], figures[f"{name}_q75"] = values.quantile(0.25), values.quantile(0.75)
            figures["per_batch_windows"] = len(values)
    if "step" in frame:
        steps = pd.to_numeric(frame["step"], errors="coerce").dropna()
        figures["last_step"] = int(steps.max()) if len(steps) else None
    if VAL_ACCURACY in frame:
        validated = frame[pd.to_numeric(frame[VAL_ACCURACY], errors="coerce").notna()]
        if len(validated):
            last = validated.iloc[-1]
            figures["last_val_accuracy"] = float(last[VAL_ACCURACY])
            epoch = _finite(last.get("epoch"))
            figures["last_val_epoch"] = int(epoch) if epoch is not None else None
    return figures


def job_record(summary: dict[str, Any], job_dir: Optional[Path] = None) -> dict[str, Any]:
    """One row of the frame: identity, swept values, accuracy, every final metric, throughput, errors."""
    metrics = dict(summary.get("metrics") or {})
    throughput = summary.get("throughput") or {}
    error = summary.get("error") or {}
    peak = summary.get("peak_memory") or {}
    accuracy, metric = first_metric(metrics, ACCURACY_KEYS)
    samples = first_metric(metrics, SAMPLE_KEYS)[0]
    row: dict[str, Any] = {key: summary.get(key) for key in IDENTITY}
    row["tasks"] = ",".join(map(str, summary.get("tasks") or [])) or None
    row.update(
        accuracy=accuracy, accuracy_metric=metric, chance_accuracy=first_metric(metrics, CHANCE_KEYS)[0],
        eval_samples=int(samples) if samples else None,
        peak_memory_gib=peak["bytes"] / 1024**3 if peak.get("bytes") is not None else None,
        peak_memory_kind=peak.get("kind") if peak.get("bytes") is not None else None,
        error_type=error.get("type"), error_message=error.get("message"),
        **{key: summary.get(key) for key in ("num_parameters", "device", "duration_s", "attempt", "started_at",
                                             "ended_at")},
    )
    row.update({key: value for key, value in throughput.items() if key not in row})
    if job_dir is not None:
        row.update(logged_figures(job_dir, steady_windows(summary)))
    step = STEP_IN_ERROR.search(str(error.get("message") or ""))
    if step:  # the summary's own word on where it stopped beats the last step the CSV logger flushed
        row["last_step"] = int(step.group(1))
    row.update({key: _finite(value) if value is not None else None for key, value in metrics.items()})
    return row


# --- the frame ----------------------------------------------------------------------------------
def read_summaries(sweep_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(job folder, summary) of every readable ``summary.json`` under ``sweep_dir``, by path."""
    found = []
    for path in sorted(Path(sweep_dir).rglob(SUMMARY_FILE)):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            log.warning("skipping unreadable %s (%s)", path, err)
            continue
        if isinstance(data, dict):
            found.append((path.parent, data))
    return found


def sweep_frame(summaries: Iterable[dict[str, Any]], job_dirs: Optional[Iterable[Optional[Path]]] = None
                ) -> pd.DataFrame:
    """The frame of ``summaries`` (each with a ``job`` name); ``job_dirs`` add what their metrics.csv logged."""
    summaries = list(summaries)
    dirs = list(job_dirs) if job_dirs is not None else [None] * len(summaries)
    rows = [job_record(s, d) for s, d in zip(summaries, dirs)]
    swept = [job_overrides(s.get("override_dirname"), str(s.get("job") or "")) for s in summaries]
    keys = sorted({k for values in swept for k in values} - set(IDENTITY) - set(DERIVED))
    for row, summary, values in zip(rows, summaries, swept):
        for key in keys:
            typed = config_value(summary.get("config") or {}, key)
            row[key] = typed if typed is not None else values.get(key)
    metric_columns = sorted({k for s in summaries for k in (s.get("metrics") or {})})
    extra = sorted({k for row in rows for k in row} - set(IDENTITY) - set(DERIVED) - set(keys) - set(metric_columns))
    columns = [*IDENTITY, *keys, *DERIVED, *extra, *metric_columns]
    frame = pd.DataFrame(rows, columns=columns)
    for column in INTEGERS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    for column in STRINGS:
        frame[column] = frame[column].astype("string")
    frame["memory"] = frame["memory"].astype("boolean")
    for column in ("accuracy", "chance_accuracy", "last_val_accuracy", "peak_memory_gib", "duration_s",
                   *(c for c in DERIVED if c.startswith(("tokens_", "samples_", "step_time_", "flops_", "mfu_")))):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in metric_columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame.attrs.update(swept_keys=keys, metric_columns=metric_columns)
    return frame


def load_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """Every job of the multirun folder ``sweep_dir`` as one DataFrame row (see the module docstring).

    ``frame.attrs`` holds ``sweep_dir``, ``swept_keys`` and ``metric_columns``; the frame is empty (with its
    columns) when no job wrote a summary yet.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep_dir} does not exist")
    found = read_summaries(sweep_dir)
    for job_dir, summary in found:
        summary["job"] = str(job_dir.relative_to(sweep_dir))
    frame = sweep_frame([s for _, s in found], [d for d, _ in found])
    frame.attrs["sweep_dir"] = str(sweep_dir)
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts with missing values as None (what the report's cells hold)."""
    return [{k: (None if _missing(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and the like are values
        return False


# --- the command --------------------------------------------------------------------------------
def launch_overrides(sweep_dir: Path) -> list[str]:
    """The task overrides of the last launch into the folder (``multirun.yaml``), [] if it is not there."""
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return []
    try:
        from omegaconf import OmegaConf

        task = OmegaConf.select(OmegaConf.load(path), "hydra.overrides.task", default=None)
        return [str(o) for o in task or []]
    except Exception as err:  # noqa: BLE001 - a broken multirun.yaml only costs the caption its command
        log.warning("cannot read the overrides of %s (%s)", path, err)
        return []


def sweep_command(frame: pd.DataFrame, sweep_dir: Optional[Path] = None) -> Optional[str]:
    """``python train.py -m <fixed overrides> <key=v1,v2,...>``: the launch's fixed overrides (multirun.yaml)
    and, for each key that names the job folders, the values its jobs ran (a reconstruction: a key set in
    only some jobs shows as a sweep over all). None when neither is known."""
    swept: dict[str, list[str]] = {}
    for name, job in zip(frame.get("override_dirname", []), frame.get("job", [])):
        for key, value in job_overrides(None if _missing(name) else str(name), str(job)).items():
            if value not in swept.setdefault(key, []):
                swept[key].append(value)
    fixed = [o for o in launch_overrides(sweep_dir) if override_key(o) not in swept] \
        if sweep_dir is not None else []
    if not swept and not fixed:
        return None
    sweeps = [f"{key}={','.join(sorted(values, key=_natural))}" for key, values in swept.items()]
    return " ".join(["python train.py -m", *(shlex.quote(o) for o in [*fixed, *sweeps])])


def _natural(value: str) -> tuple:
    number = _finite(value)
    return (0, number, "") if number is not None else (1, 0.0, value)
