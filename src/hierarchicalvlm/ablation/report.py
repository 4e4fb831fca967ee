"""The report of a sweep: its jobs (:func:`~.sweep.load_sweep`'s DataFrame) -> report.md, jobs.csv and plots.

The main table follows the Long-Range-Arena layout: one row per attention mechanism, one column per
level-2 sequence length; a cell holds the accuracy (mean ± std over seeds), the steady-state tokens/s with
the per-batch interquartile range, the peak memory and the speed-up over full attention at that length.
Failed, diverged, unfinished and missing cells say so, with the reason (an unfinished job shows its last
validation accuracy, marked not final); a cell whose tokens/s rises at a longer length is flagged
overhead-bound. A ``max_seq_len.json`` (``scripts/max_seq_len.py``) next to the jobs adds the longest video
each mechanism can train on. Every plot is written as PNG and SVG, with a caption naming the sweep, the
device, the model size (when a summary records it) and the command.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from .figures import accuracy_plot, format_count, line_plot, pareto_plot, scaling_plot
from .reach import depth_table_markdown, mean_profile, write_heatmaps
from hierarchicalvlm.run.summary import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING, SUMMARY_FILE
from .sweep import load_sweep, records, sweep_command, sweep_frame

log = logging.getLogger(__name__)

CHANCE_MARGIN = 0.05  # a cell within this of chance learned nothing: flagged as a gap, never read as a result
OVERHEAD_RISE = 1.2  # tokens/s this much higher at a longer length: fixed per-step cost dominates the cell
BASELINE = "full"
MAX_LEN_FILE = "max_seq_len.json"
REASON_CHARS = 90
CSV_COLUMNS = (  # the leading columns of jobs.csv; every other column of the frame follows
    "job", "status", "attention", "num_frames", "seq_len", "seed", "accuracy", "accuracy_metric",
    "tokens_per_sec_median", "tokens_per_sec_mean", "samples_per_sec_median", "step_time_s_median",
    "flops_per_sec_median", "mfu_median", "peak_memory_gib", "peak_memory_kind", "device",
    "duration_s", "attempt", "error_type", "error_message",
)


# --- reading ------------------------------------------------------------------------------------
def latest_sweep(log_dir: Path) -> Path:
    """The sweep folder under ``<log_dir>/*/multiruns/`` whose jobs last wrote a summary (writing a report
    into an older sweep does not make it the latest)."""
    candidates = [p for p in Path(log_dir).glob("*/multiruns/*") if p.is_dir()]
    if not candidates:
        raise FileNotFoundError(f"no sweep under {log_dir}/*/multiruns/; run `python train.py -m ...` first")

    def last_activity(sweep: Path) -> float:
        return max((s.stat().st_mtime for s in sweep.rglob(SUMMARY_FILE)), default=sweep.stat().st_mtime)

    return max(candidates, key=last_activity)


def chance_of(frame: pd.DataFrame) -> Optional[float]:
    """The sweep's chance accuracy (median over jobs that logged one; None if none did)."""
    values = frame["chance_accuracy"].dropna()
    return float(values.median()) if len(values) else None


def variant_of(job: dict[str, Any], label_memory: bool) -> str:
    """The row a job belongs to: its attention, plus ``+memory`` when the sweep varies the memory level."""
    attention = str(job.get("attention"))
    return f"{attention}+memory" if label_memory and job.get("memory") else attention


# --- the table ----------------------------------------------------------------------------------
def _mean(values: Iterable[Any]) -> Optional[float]:
    values = [float(v) for v in values if v is not None]
    return statistics.fmean(values) if values else None


@dataclass
class Cell:
    """All jobs (rows of the sweep's frame, as dicts) of one (attention, sequence length) pair: one per seed."""

    attention: str
    seq_len: Optional[int]
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def _with(self, *statuses: str) -> list[dict[str, Any]]:
        return [j for j in self.jobs if j.get("status") in statuses]

    @property
    def completed(self) -> list[dict[str, Any]]:
        return self._with(COMPLETED)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Failed and diverged jobs (a diverged one stopped at a non-finite loss)."""
        return self._with(FAILED, DIVERGED)

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        return self._with(RUNNING, INTERRUPTED)

    @property
    def accuracies(self) -> list[float]:
        """The final accuracy of each completed job (an unfinished job's last validation never counts)."""
        return [float(j["accuracy"]) for j in self.completed if j.get("accuracy") is not None]

    @property
    def accuracy(self) -> tuple[Optional[float], Optional[float]]:
        """Mean and sample standard deviation over seeds (std None for a single seed)."""
        values = self.accuracies
        if not values:
            return None, None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None

    def _completed(self, key: str) -> list[float]:
        return [float(j[key]) for j in self.completed if j.get(key) is not None]

    @property
    def tokens_per_sec(self) -> Optional[float]:
        """Mean over seeds of each job's steady-state median tokens/s."""
        return _mean(self._completed("tokens_per_sec_median"))

    @property
    def tokens_per_sec_std(self) -> Optional[float]:
        """Sample std over seeds of the median tokens/s (None for fewer than two seeds)."""
        values = self._completed("tokens_per_sec_median")
        return statistics.stdev(values) if len(values) > 1 else None

    @property
    def tokens_per_sec_iqr(self) -> tuple[Optional[float], Optional[float]]:
        """The per-batch interquartile range of tokens/s (each job's logged windows; mean over seeds)."""
        return _mean(self._completed("tokens_per_sec_q25")), _mean(self._completed("tokens_per_sec_q75"))

    @property
    def step_time(self) -> Optional[float]:
        """Mean over seeds of each job's median step time (s)."""
        return _mean(self._completed("step_time_s_median"))

    @property
    def step_time_iqr(self) -> tuple[Optional[float], Optional[float]]:
        return _mean(self._completed("step_time_s_q25")), _mean(self._completed("step_time_s_q75"))

    @property
    def eval_samples(self) -> Optional[int]:
        """Evaluation samples behind one seed's accuracy (for its binomial interval), if the jobs say."""
        counts = [int(j["eval_samples"]) for j in self.completed if j.get("eval_samples")]
        return min(counts) if counts else None

    @property
    def peak_memory(self) -> tuple[Optional[float], Optional[str]]:
        """Largest peak over seeds, in GiB, and its kind (device / host_rss)."""
        peaks = [(float(j["peak_memory_gib"]), j.get("peak_memory_kind")) for j in self.completed
                 if j.get("peak_memory_gib") is not None]
        return max(peaks) if peaks else (None, None)

    @property
    def num_frames(self) -> Optional[int]:
        return next((j.get("num_frames") for j in self.jobs if j.get("num_frames") is not None), None)


@dataclass
class AblationTable:
    """Cells indexed by (attention, seq_len), with the row and column order of the report, over ``frame``."""

    cells: dict[tuple[str, Optional[int]], Cell]
    attentions: list[str]
    lengths: list[Optional[int]]
    frame: pd.DataFrame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "AblationTable":
        jobs = records(frame)
        label_memory = len({bool(j["memory"]) for j in jobs if j.get("memory") is not None}) > 1
        cells: dict[tuple[str, Optional[int]], Cell] = {}
        for job in jobs:
            key = (variant_of(job, label_memory), job.get("seq_len"))
            cells.setdefault(key, Cell(*key)).jobs.append(job)
        attentions = sorted({a for a, _ in cells}, key=lambda a: (a != BASELINE, a))
        lengths = sorted({n for _, n in cells}, key=lambda n: (n is None, n or 0))
        return cls(cells, attentions, lengths, frame)

    @classmethod
    def from_summaries(cls, summaries: Iterable[dict[str, Any]]) -> "AblationTable":
        """The table of summary dicts (each with a ``job`` name), without their folders' CSV logs."""
        return cls.from_frame(sweep_frame(summaries))

    @property
    def known_lengths(self) -> list[int]:
        """The columns whose sequence length is known (a job that failed before recording one has None)."""
        return [n for n in self.lengths if n is not None]

    def cell(self, attention: str, seq_len: Optional[int]) -> Cell:
        return self.cells.get((attention, seq_len)) or Cell(attention, seq_len)

    def speedup(self, attention: str, seq_len: Optional[int]) -> Optional[float]:
        """tokens/s of ``attention`` over full attention's at the same length (None if either is missing)."""
        mine, baseline = self.cell(attention, seq_len).tokens_per_sec, self.cell(BASELINE, seq_len).tokens_per_sec
        return mine / baseline if mine is not None and baseline else None

    def overhead_bound(self, attention: str, seq_len: Optional[int]) -> Optional[tuple[float, int]]:
        """(rise, longer length) when the mechanism's tokens/s at a longer length is ``OVERHEAD_RISE`` times its
        tokens/s here or more: the step's fixed cost, not the attention, sets this cell's speed (None if not)."""
        mine = self.cell(attention, seq_len).tokens_per_sec
        if mine is None or seq_len is None:
            return None
        rises = [(speed / mine, n) for n in self.known_lengths if n > seq_len
                 for speed in [self.cell(attention, n).tokens_per_sec] if speed is not None]
        rise = max(rises, default=None)
        return rise if rise is not None and rise[0] >= OVERHEAD_RISE else None


# --- markdown -----------------------------------------------------------------------------------
def _md(text: Any) -> str:
    """Make text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _short(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_accuracy(mean: Optional[float], std: Optional[float], n: int) -> str:
    if mean is None:
        return "acc –"
    return f"acc {mean:.3f} ± {std:.3f} (n={n})" if std is not None else f"acc {mean:.3f} (n={n})"


def format_memory(gib: Optional[float], kind: Optional[str]) -> str:
    if gib is None:
        return "mem –"
    return f"{gib:.2f} GiB {'host RSS' if kind == 'host_rss' else 'device'}"


def error_reason(job: dict[str, Any]) -> str:
    return f"{job.get('error_type') or 'error'}: {job.get('error_message') or ''}".strip().rstrip(":")


def length_header(seq_len: Optional[int], frames: Optional[int]) -> str:
    if seq_len is None:
        return "length unknown"
    return f"{seq_len:,} tokens ({frames} frames)" if frames is not None else f"{seq_len:,} tokens"


def format_iqr(low: Optional[float], high: Optional[float]) -> str:
    return f" (IQR {format_count(low)}–{format_count(high)})" if low is not None and high is not None else ""


def unfinished_text(job: dict[str, Any]) -> Optional[str]:
    """Where an unfinished job stopped and its last validation accuracy, marked not final (None: nothing logged)."""
    step, accuracy, epoch = job.get("last_step"), job.get("last_val_accuracy"), job.get("last_val_epoch")
    if step is None and accuracy is None:
        return None
    where = f"seed {job.get('seed')}: {job.get('status')}" + (f" at step {step}" if step is not None else "")
    if accuracy is None:
        return f"{where} · no validation logged yet"
    return f"{where} · last val acc {accuracy:.3f} ({f'epoch {epoch}, ' if epoch is not None else ''}not final)"


def cell_text(table: AblationTable, attention: str, seq_len: Optional[int], notes: list[str],
              chance: Optional[float] = None) -> str:
    """The text of one cell; failure reasons go to ``notes`` (numbered footnotes) and are cited. An accuracy
    within ``CHANCE_MARGIN`` of ``chance`` is flagged: the job learned nothing, a gap of the recipe or the task.
    A cell whose tokens/s rises at a longer length is flagged overhead-bound."""
    cell = table.cell(attention, seq_len)
    if not cell.jobs:
        return "not run"
    parts = []
    if cell.completed:
        mean, std = cell.accuracy
        speedup = table.speedup(attention, seq_len)
        overhead = table.overhead_bound(attention, seq_len)
        parts += [
            format_accuracy(mean, std, len(cell.accuracies)),
            *(["⚠ at chance: learned nothing, not a result"]
              if mean is not None and chance is not None and mean <= chance + CHANCE_MARGIN else []),
            f"{format_count(cell.tokens_per_sec)} tok/s{format_iqr(*cell.tokens_per_sec_iqr)}",
            *([f"⚠ overhead-bound: tok/s {overhead[0]:.1f}× higher at {overhead[1]:,} tokens"] if overhead else []),
            format_memory(*cell.peak_memory),
            f"{speedup:.2f}× vs full" if speedup is not None else "speed-up n/a (no full result)",
        ]
    for job in cell.failed:
        notes.append(f"{attention} @ {length_header(seq_len, cell.num_frames)}, seed {job.get('seed')} "
                     f"(`{job.get('job')}`): {error_reason(job)}")
        parts.append(f"✗ {job.get('status')}: {_short(error_reason(job))} [{len(notes)}]")
    if cell.unfinished:
        parts.append(f"… unfinished ({len(cell.unfinished)} job(s) still running or interrupted)")
        parts += [text for text in map(unfinished_text, cell.unfinished) if text]
    return "<br>".join(_md(p) for p in parts)


def load_max_len(path: Optional[Path]) -> Optional[dict[str, Any]]:
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def longest_video_text(result: dict[str, Any]) -> str:
    frames, tokens = result.get("max_frames"), result.get("max_seq_len")
    if frames is None:
        return f"none fits ({_short(result.get('reason') or 'smallest length failed')})"
    if result.get("unfinished"):
        bound = " (search cut off; may go further)"
    elif result.get("bounded", True):
        bound = ""
    else:
        bound = " (search limit; may go further)"
    return f"{frames} frames = {tokens:,} tokens{bound}" if tokens else f"{frames} frames{bound}"


def render_markdown(table: AblationTable, title: str, max_len: Optional[dict[str, Any]], plots: list[Path],
                    chance: Optional[float] = None, command: Optional[str] = None,
                    command_given: bool = False) -> str:
    """report.md: overview, the main table, failures, overhead-bound cells, the longest-video table, plots.

    ``command_given``: ``command`` is what the user says made the sweep, not a reconstruction."""
    frame = table.frame
    statuses = Counter(frame["status"].dropna())
    devices = sorted(set(frame["device"].dropna()))
    metrics = sorted(set(frame["accuracy_metric"].dropna()))
    parameters = format_parameters(frame)
    lines = [
        f"# Long-sequence ablation: {title}",
        "",
        f"{len(frame)} jobs: {statuses[COMPLETED]} completed, {statuses[FAILED]} failed, "
        + (f"{statuses[DIVERGED]} diverged, " if statuses[DIVERGED] else "")
        + f"{statuses[RUNNING] + statuses[INTERRUPTED]} unfinished. "
        f"Device: {', '.join(devices) or 'unknown'}." + (f" Model: {parameters}." if parameters else ""),
        *(["", f"Command{'' if command_given else ' (reconstructed from the job folders)'}: `{command}`"]
          if command else []),
        "",
        f"Cells: accuracy ({', '.join(metrics) or 'none'}; mean ± std over seeds) · steady-state tokens/s through "
        "the long-range level (median over batches, mean over seeds; IQR: interquartile range of the logged "
        "per-batch windows) · peak memory (largest over seeds; "
        "*device* = GPU memory allocated, *host RSS* = process RAM on CPU) · speed-up in tokens/s over full "
        "attention at the same length. Unfinished jobs show their last validation accuracy, not final and "
        "never averaged in.",
        "",
    ]
    results = (max_len or {}).get("results", {})
    headers = ["attention", *(length_header(n, _frames_of(table, n)) for n in table.lengths)]
    if results:
        headers.append("longest trainable video")
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    notes: list[str] = []
    for attention in table.attentions:
        row = [f"**{attention}**", *(cell_text(table, attention, n, notes, chance) for n in table.lengths)]
        if results:
            row.append(_md(longest_video_text(results[attention])) if attention in results else "–")
        lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", "## Failures", ""] + [f"{i}. {_md(note)}" for i, note in enumerate(notes, 1)]
    lines += overhead_section(table)
    if results:
        lines += ["", "## Longest video that trains one step", "",
                  f"Device: {max_len.get('device', '?')}; limit: {_md(max_len.get('limit', '?'))}.", "",
                  "| attention | longest video | first failure | reason |", "|---|---|---|---|"]
        for attention, result in sorted(results.items(), key=lambda kv: (kv[0] != BASELINE, kv[0])):
            failure = result.get("first_failure_frames")
            lines.append(f"| {attention} | {_md(longest_video_text(result))} | "
                         f"{f'{failure} frames' if failure else '–'} | {_md(_short(result.get('reason') or '–'))} |")
    if chance is not None:
        lines += ["", f"Chance accuracy (best guess from the question alone): {chance:.3f}."]
    lines += depth_section(table, chance)
    if plots:
        lines += ["", "## Plots", "", "Each also as SVG beside the PNG.", ""]
        lines += [f"![{p.stem}]({p.as_posix()})" for p in plots]
    lines += ["", "All jobs: `jobs.csv`.", ""]
    return "\n".join(lines)


def overhead_section(table: AblationTable) -> list[str]:
    """Markdown: the cells whose tokens/s rises at a longer length (nothing when there are none)."""
    found = overhead_warnings(table)
    if not found:
        return []
    return ["", "## Overhead-bound cells", "",
            "tokens/s should stay flat (O(n) cost) or fall (O(n²)) as the sequence grows; where it rises, a fixed "
            "per-step cost (kernel launches, the data loader, the rest of the model) dominates the smaller length, "
            "so its tokens/s and speed-up say little about the attention mechanism:", "", *(f"- {w}" for w in found)]


def overhead_warnings(table: AblationTable) -> list[str]:
    """'full @ 128 tokens: 7.0× the tokens/s at 512 tokens' for each overhead-bound cell."""
    return [f"{a} @ {n:,} tokens: {rise[0]:.1f}× the tokens/s at {rise[1]:,} tokens"
            for a in table.attentions for n in table.known_lengths for rise in [table.overhead_bound(a, n)] if rise]


def format_parameters(frame: pd.DataFrame) -> Optional[str]:
    """'1.23M parameters' (or a range over the variants) where summaries record a count; None where none does."""
    counts = frame["num_parameters"].dropna()
    if not len(counts):
        return None
    low, high = int(counts.min()), int(counts.max())
    return f"{format_count(low)} parameters" if low == high else f"{format_count(low)}–{format_count(high)} parameters"


def _frames_of(table: AblationTable, seq_len: Optional[int]) -> Optional[int]:
    return next((c.num_frames for (a, n), c in table.cells.items() if n == seq_len and c.num_frames), None)


# --- CSV and plots ------------------------------------------------------------------------------
def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Every column of the frame, ``CSV_COLUMNS`` first; a missing value is an empty field."""
    leading = [c for c in CSV_COLUMNS if c in frame]
    frame[leading + [c for c in frame.columns if c not in leading]].to_csv(path, index=False)


def write_plots(table: AblationTable, out_dir: Path, chance: Optional[float] = None, caption: str = "") -> list[Path]:
    """The PNGs (each with an SVG beside it; those with at least one point or mark) under ``out_dir/plots``;
    paths relative to ``out_dir``."""
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    kinds = {k for c in table.cells.values() for k in [c.peak_memory[1]] if k}
    memory_label = "peak memory (GiB, " + ("host RSS" if kinds == {"host_rss"} else "device" if kinds == {"device"}
                                           else "device or host RSS") + ")"
    written = [
        scaling_plot(table, plot_dir / "throughput_vs_length.png", lambda c: c.tokens_per_sec,
                     lambda c: c.tokens_per_sec_iqr, "tokens/s (steady state)", "Throughput vs sequence length",
                     {"O(n) cost: flat": 0.0, "O(n²) cost: ∝ 1/n": -1.0}, caption),
        scaling_plot(table, plot_dir / "step_time_vs_length.png", lambda c: c.step_time, lambda c: c.step_time_iqr,
                     "step time (s, median)", "Step time vs sequence length",
                     {"O(n) guide": 1.0, "O(n²) guide": 2.0}, caption),
        line_plot(table, plot_dir / "memory_vs_length.png", lambda c: c.peak_memory[0], memory_label,
                  "Peak memory vs sequence length", caption),
        accuracy_plot(table, plot_dir / "accuracy_vs_length.png", chance, caption),
        pareto_plot(table, plot_dir / "accuracy_vs_throughput.png", chance, caption),
        write_heatmaps(table.attentions, table.known_lengths, depth_profiles(table),
                       plot_dir / "depth_heatmaps.png", chance, caption),
    ]
    return [p.relative_to(out_dir) for p in written if p is not None]


def depth_profiles(table: AblationTable) -> dict[str, dict[int, dict[int, tuple]]]:
    """{variant: {seq_len: {depth bucket: (mean, std, seeds)}}} over the completed jobs of each cell."""
    return {a: {n: mean_profile(table.cell(a, n).completed) for n in table.known_lengths} for a in table.attentions}


def depth_section(table: AblationTable, chance: Optional[float]) -> list[str]:
    """Markdown: the accuracy-by-depth table of every variant (nothing when no job logged depths)."""
    profiles = depth_profiles(table)
    lines: list[str] = []
    for variant in table.attentions:
        lines += depth_table_markdown(variant, table.known_lengths, profiles[variant], chance)
    if not lines:
        return []
    return ["", "## Accuracy by evidence depth", "",
            "Rows: where in the video the evidence starts (0 % = first frame, farthest from the question asked "
            "after the video); columns: level-2 sequence length; mean ± std over seeds.", "", *lines]


def report_caption(table: AblationTable, title: str, command: Optional[str] = None) -> str:
    """One line for figures: the sweep, its devices, the model size (only where summaries record it), the task
    families and the command."""
    frame = table.frame
    devices = sorted(set(frame["device"].dropna()))
    tasks = sorted(set(frame["tasks"].dropna()))
    parts = [f"sweep {title}", f"device {', '.join(devices) or '?'}"]
    parameters = format_parameters(frame)
    if parameters:
        parts.append(f"model {parameters}")
    if tasks:
        parts.append("tasks " + "; ".join(tasks))
    if command:
        parts.append(f"command: {command}")
    return " · ".join(parts)


# --- entry point --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportFiles:
    report: Path
    jobs_csv: Path
    plots: list[Path]  # PNGs; each has an SVG beside it
    warnings: list[str] = field(default_factory=list)  # the overhead-bound cells


def write_report(sweep_dir: Path, out_dir: Optional[Path] = None, max_len_path: Optional[Path] = None,
                 command: Optional[str] = None) -> ReportFiles:
    """Read every job of ``sweep_dir`` (:func:`load_sweep`) and write report.md, jobs.csv and plots/ to
    ``out_dir`` (default: the sweep folder). ``max_len_path`` defaults to ``<sweep_dir>/max_seq_len.json``;
    ``command`` (what made the sweep, e.g. when its jobs came from several commands) replaces the one
    reconstructed from the job folders."""
    sweep_dir = Path(sweep_dir)
    frame = load_sweep(sweep_dir)
    if frame.empty:
        raise FileNotFoundError(f"no {SUMMARY_FILE} under {sweep_dir}; is it the folder of a sweep (hydra.sweep.dir)?")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    table = AblationTable.from_frame(frame)
    max_len = load_max_len(max_len_path if max_len_path is not None else sweep_dir / MAX_LEN_FILE)
    chance = chance_of(frame)
    command_given = command is not None
    command = command if command_given else sweep_command(frame, sweep_dir)
    plots = write_plots(table, out_dir, chance, report_caption(table, sweep_dir.name, command))
    jobs_csv = out_dir / "jobs.csv"
    write_csv(frame, jobs_csv)
    report = out_dir / "report.md"
    report.write_text(render_markdown(table, sweep_dir.name, max_len, plots, chance, command, command_given))
    warnings = [f"overhead-bound: {w}" for w in overhead_warnings(table)]
    for warning in warnings:
        log.warning(warning)
    return ReportFiles(report, jobs_csv, [out_dir / p for p in plots], warnings)
