"""The report of a sweep: every job's summary.json -> report.md (tables), jobs.csv and PNG plots.

The main table follows the Long-Range-Arena layout: one row per attention mechanism, one column per
level-2 sequence length; a cell holds the accuracy (mean ± std over seeds), the steady-state tokens/s,
the peak memory and the speed-up over full attention at that length. Failed, unfinished and missing
cells say so, with the reason. A ``max_seq_len.json`` (``scripts/max_seq_len.py``) next to the jobs adds
the longest video each mechanism can train on.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from .reach import depth_table_markdown, mean_profile, wilson_interval, write_heatmaps
from hierarchicalvlm.run.summary import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING, SUMMARY_FILE

log = logging.getLogger(__name__)

ACCURACY_KEYS = ("test/qa_acc", "val/qa_acc")  # the first one a job has is its accuracy
CHANCE_KEYS = ("test/chance_acc", "val/chance_acc")  # the matching chance level, logged by the module
CHANCE_MARGIN = 0.05  # a cell within this of chance learned nothing: flagged as a gap, never read as a result
BASELINE = "full"
MAX_LEN_FILE = "max_seq_len.json"
REASON_CHARS = 90
CSV_COLUMNS = (
    "job", "status", "attention", "num_frames", "seq_len", "seed", "accuracy", "accuracy_metric",
    "tokens_per_sec_median", "tokens_per_sec_mean", "samples_per_sec_median", "step_time_s_median",
    "flops_per_sec_median", "mfu_median", "peak_memory_gib", "peak_memory_kind", "device",
    "duration_s", "attempt", "error_type", "error_message",
)


# --- reading ------------------------------------------------------------------------------------
def load_summaries(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every readable ``summary.json`` under ``sweep_dir``, each with ``job`` = its folder relative to the sweep."""
    sweep_dir = Path(sweep_dir)
    summaries = []
    for path in sorted(sweep_dir.rglob(SUMMARY_FILE)):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            log.warning("skipping unreadable %s (%s)", path, err)
            continue
        data["job"] = str(path.parent.relative_to(sweep_dir))
        summaries.append(data)
    return summaries


def latest_sweep(log_dir: Path) -> Path:
    """The sweep folder under ``<log_dir>/*/multiruns/`` whose jobs last wrote a summary (writing a report
    into an older sweep does not make it the latest)."""
    candidates = [p for p in Path(log_dir).glob("*/multiruns/*") if p.is_dir()]
    if not candidates:
        raise FileNotFoundError(f"no sweep under {log_dir}/*/multiruns/; run `python train.py -m ...` first")

    def last_activity(sweep: Path) -> float:
        return max((s.stat().st_mtime for s in sweep.rglob(SUMMARY_FILE)), default=sweep.stat().st_mtime)

    return max(candidates, key=last_activity)


def accuracy_of(summary: dict[str, Any]) -> tuple[Optional[float], Optional[str]]:
    metrics = summary.get("metrics") or {}
    for key in ACCURACY_KEYS:
        if metrics.get(key) is not None:
            return float(metrics[key]), key
    return None, None


def chance_of(summaries: Iterable[dict[str, Any]]) -> Optional[float]:
    """The sweep's chance accuracy (median over jobs that logged one; None if none did)."""
    values = []
    for summary in summaries:
        metrics = summary.get("metrics") or {}
        value = next((metrics[k] for k in CHANCE_KEYS if metrics.get(k) is not None), None)
        if value is not None:
            values.append(float(value))
    return statistics.median(values) if values else None


def variant_of(summary: dict[str, Any], label_memory: bool) -> str:
    """The row a job belongs to: its attention, plus ``+memory`` when the sweep varies the memory level."""
    attention = str(summary.get("attention"))
    return f"{attention}+memory" if label_memory and summary.get("memory") else attention


def peak_of(summary: dict[str, Any]) -> tuple[Optional[float], Optional[str]]:
    peak = summary.get("peak_memory") or {}
    if peak.get("bytes") is None:
        return None, None
    return peak["bytes"] / 1024**3, peak.get("kind")


def job_row(summary: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: identity, status, accuracy, throughput, memory, error."""
    throughput = summary.get("throughput") or {}
    error = summary.get("error") or {}
    accuracy, metric = accuracy_of(summary)
    peak, kind = peak_of(summary)
    row = {key: summary.get(key) for key in ("job", "status", "attention", "num_frames", "seq_len", "seed",
                                             "device", "duration_s", "attempt")}
    row.update({key: throughput.get(key) for key in ("tokens_per_sec_median", "tokens_per_sec_mean",
                                                      "samples_per_sec_median", "step_time_s_median",
                                                      "flops_per_sec_median", "mfu_median")})
    row.update(accuracy=accuracy, accuracy_metric=metric, peak_memory_gib=peak, peak_memory_kind=kind,
               error_type=error.get("type"), error_message=error.get("message"))
    return row


# --- the table ----------------------------------------------------------------------------------
@dataclass
class Cell:
    """All jobs of one (attention, sequence length) pair: usually one per seed."""

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
        return [a for a in (accuracy_of(j)[0] for j in self.completed) if a is not None]

    @property
    def accuracy(self) -> tuple[Optional[float], Optional[float]]:
        """Mean and sample standard deviation over seeds (std None for a single seed)."""
        values = self.accuracies
        if not values:
            return None, None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None

    @property
    def tokens_per_sec(self) -> Optional[float]:
        """Mean over seeds of each job's steady-state median tokens/s."""
        values = self._speeds()
        return statistics.fmean(values) if values else None

    @property
    def tokens_per_sec_std(self) -> Optional[float]:
        """Sample std over seeds of the median tokens/s (None for fewer than two seeds)."""
        values = self._speeds()
        return statistics.stdev(values) if len(values) > 1 else None

    def _speeds(self) -> list[float]:
        values = [(j.get("throughput") or {}).get("tokens_per_sec_median") for j in self.completed]
        return [float(v) for v in values if v is not None]

    @property
    def eval_samples(self) -> Optional[int]:
        """Evaluation samples behind one seed's accuracy (for its binomial interval), if the jobs say."""
        counts = []
        for job in self.completed:
            metrics = job.get("metrics") or {}
            count = next((metrics[k] for k in ("test/num_samples", "val/num_samples") if metrics.get(k)), None)
            if count:
                counts.append(int(count))
        return min(counts) if counts else None

    @property
    def peak_memory(self) -> tuple[Optional[float], Optional[str]]:
        """Largest peak over seeds, in GiB, and its kind (device / host_rss)."""
        peaks = [peak_of(j) for j in self.completed]
        peaks = [p for p in peaks if p[0] is not None]
        return max(peaks) if peaks else (None, None)

    @property
    def num_frames(self) -> Optional[int]:
        return next((j.get("num_frames") for j in self.jobs if j.get("num_frames") is not None), None)


@dataclass
class AblationTable:
    """Cells indexed by (attention, seq_len), with the row and column order of the report."""

    cells: dict[tuple[str, Optional[int]], Cell]
    attentions: list[str]
    lengths: list[Optional[int]]

    @classmethod
    def from_summaries(cls, summaries: Iterable[dict[str, Any]]) -> "AblationTable":
        summaries = list(summaries)
        label_memory = len({bool(s.get("memory")) for s in summaries if "memory" in s}) > 1
        cells: dict[tuple[str, Optional[int]], Cell] = {}
        for summary in summaries:
            key = (variant_of(summary, label_memory), summary.get("seq_len"))
            cells.setdefault(key, Cell(*key)).jobs.append(summary)
        attentions = sorted({a for a, _ in cells}, key=lambda a: (a != BASELINE, a))
        lengths = sorted({n for _, n in cells}, key=lambda n: (n is None, n or 0))
        return cls(cells, attentions, lengths)

    def cell(self, attention: str, seq_len: Optional[int]) -> Cell:
        return self.cells.get((attention, seq_len)) or Cell(attention, seq_len)

    def speedup(self, attention: str, seq_len: Optional[int]) -> Optional[float]:
        """tokens/s of ``attention`` over full attention's at the same length (None if either is missing)."""
        mine, baseline = self.cell(attention, seq_len).tokens_per_sec, self.cell(BASELINE, seq_len).tokens_per_sec
        return mine / baseline if mine is not None and baseline else None


# --- markdown -----------------------------------------------------------------------------------
def _md(text: Any) -> str:
    """Make text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _short(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_count(value: Optional[float]) -> str:
    """1234 -> '1.23k', 2.5e6 -> '2.50M'."""
    if value is None or not math.isfinite(value):
        return "–"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.1f}"


def format_accuracy(mean: Optional[float], std: Optional[float], n: int) -> str:
    if mean is None:
        return "acc –"
    return f"acc {mean:.3f} ± {std:.3f} (n={n})" if std is not None else f"acc {mean:.3f} (n={n})"


def format_memory(gib: Optional[float], kind: Optional[str]) -> str:
    if gib is None:
        return "mem –"
    return f"{gib:.2f} GiB {'host RSS' if kind == 'host_rss' else 'device'}"


def error_reason(job: dict[str, Any]) -> str:
    error = job.get("error") or {}
    return f"{error.get('type', 'error')}: {error.get('message', '')}".strip().rstrip(":")


def length_header(seq_len: Optional[int], frames: Optional[int]) -> str:
    if seq_len is None:
        return "length unknown"
    return f"{seq_len:,} tokens ({frames} frames)" if frames is not None else f"{seq_len:,} tokens"


def cell_text(table: AblationTable, attention: str, seq_len: Optional[int], notes: list[str],
              chance: Optional[float] = None) -> str:
    """The text of one cell; failure reasons go to ``notes`` (numbered footnotes) and are cited. An accuracy
    within ``CHANCE_MARGIN`` of ``chance`` is flagged: the job learned nothing, a gap of the recipe or the task."""
    cell = table.cell(attention, seq_len)
    if not cell.jobs:
        return "not run"
    parts = []
    if cell.completed:
        mean, std = cell.accuracy
        speedup = table.speedup(attention, seq_len)
        parts += [
            format_accuracy(mean, std, len(cell.accuracies)),
            *(["⚠ at chance: learned nothing, not a result"]
              if mean is not None and chance is not None and mean <= chance + CHANCE_MARGIN else []),
            f"{format_count(cell.tokens_per_sec)} tok/s",
            format_memory(*cell.peak_memory),
            f"{speedup:.2f}× vs full" if speedup is not None else "speed-up n/a (no full result)",
        ]
    for job in cell.failed:
        notes.append(f"{attention} @ {length_header(seq_len, cell.num_frames)}, seed {job.get('seed')} "
                     f"(`{job.get('job')}`): {error_reason(job)}")
        parts.append(f"✗ {job.get('status')}: {_short(error_reason(job))} [{len(notes)}]")
    if cell.unfinished:
        parts.append(f"… unfinished ({len(cell.unfinished)} job(s) still running or interrupted)")
    return "<br>".join(_md(p) for p in parts)


def load_max_len(path: Optional[Path]) -> Optional[dict[str, Any]]:
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def longest_video_text(result: dict[str, Any]) -> str:
    frames, tokens = result.get("max_frames"), result.get("max_seq_len")
    if frames is None:
        return f"none fits ({_short(result.get('reason') or 'smallest length failed')})"
    bound = "" if result.get("bounded", True) else " (search limit; may go further)"
    return f"{frames} frames = {tokens:,} tokens{bound}" if tokens else f"{frames} frames{bound}"


def render_markdown(table: AblationTable, title: str, summaries: list[dict[str, Any]],
                    max_len: Optional[dict[str, Any]], plots: list[Path], chance: Optional[float] = None) -> str:
    """report.md: overview, the main table, failures, the longest-video table and the plots."""
    statuses = [s.get("status") for s in summaries]
    devices = sorted({str(s.get("device")) for s in summaries if s.get("device")})
    metrics = sorted({m for m in (accuracy_of(s)[1] for s in summaries) if m})
    lines = [
        f"# Long-sequence ablation: {title}",
        "",
        f"{len(summaries)} jobs: {statuses.count(COMPLETED)} completed, {statuses.count(FAILED)} failed, "
        + (f"{statuses.count(DIVERGED)} diverged, " if DIVERGED in statuses else "")
        + f"{statuses.count(RUNNING) + statuses.count(INTERRUPTED)} unfinished. "
        f"Device: {', '.join(devices) or 'unknown'}.",
        "",
        f"Cells: accuracy ({', '.join(metrics) or 'none'}; mean ± std over seeds) · steady-state tokens/s through "
        "the long-range level (median over batches, mean over seeds) · peak memory (largest over seeds; "
        "*device* = GPU memory allocated, *host RSS* = process RAM on CPU) · speed-up in tokens/s over full "
        "attention at the same length.",
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
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.as_posix()})" for p in plots]
    lines += ["", "All jobs: `jobs.csv`.", ""]
    return "\n".join(lines)


def _frames_of(table: AblationTable, seq_len: Optional[int]) -> Optional[int]:
    return next((c.num_frames for (a, n), c in table.cells.items() if n == seq_len and c.num_frames), None)


# --- CSV and plots ------------------------------------------------------------------------------
def write_csv(summaries: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for summary in summaries:
            writer.writerow(job_row(summary))


def _series(table: AblationTable, attention: str, value) -> tuple[list[float], list[float]]:
    points = [(n, value(table.cell(attention, n))) for n in table.lengths if n is not None]
    points = [(n, v) for n, v in points if v is not None]
    return [float(n) for n, _ in points], [float(v) for _, v in points]


def _line_plot(table: AblationTable, path: Path, value, ylabel: str, title: str, log_y: bool) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    drawn = False
    for attention in table.attentions:
        xs, ys = _series(table, attention, value)
        if xs:
            ax.plot(xs, ys, marker="o", label=attention)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("level-2 sequence length (tokens)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _accuracy_plot(table: AblationTable, path: Path, chance: Optional[float] = None) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    drawn = False
    for attention in table.attentions:
        points = [(n, *table.cell(attention, n).accuracy) for n in table.lengths if n is not None]
        points = [p for p in points if p[1] is not None]
        if points:
            ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] or 0.0 for p in points],
                        marker="o", capsize=3, label=attention)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    if chance is not None:
        ax.axhline(chance, color="red", linestyle=":", linewidth=1.2, label=f"chance ({chance:.2f})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("level-2 sequence length (tokens)")
    ax.set_ylabel("accuracy (mean ± std over seeds)")
    ax.set_title("Accuracy vs sequence length")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes (higher throughput and higher accuracy), by throughput."""
    front = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def _accuracy_error(cell: Cell) -> Optional[list[list[float]]]:
    """Error bar of a cell's accuracy: the std over seeds, or for one seed its 95 % binomial interval."""
    mean, std = cell.accuracy
    if mean is None:
        return None
    if std is not None:
        return [[std], [std]]
    n = cell.eval_samples
    if not n:
        return None
    low, high = wilson_interval(mean, n)
    return [[mean - low], [high - mean]]


def _pareto_plot(table: AblationTable, path: Path, chance: Optional[float] = None) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colours = {a: f"C{i}" for i, a in enumerate(table.attentions)}
    drawn = False
    for seq_len in table.lengths:
        points = []
        for attention in table.attentions:
            cell = table.cell(attention, seq_len)
            accuracy, speed = cell.accuracy[0], cell.tokens_per_sec
            if accuracy is None or speed is None:
                continue
            points.append((speed, accuracy))
            ax.errorbar(speed, accuracy, xerr=cell.tokens_per_sec_std, yerr=_accuracy_error(cell),
                        color=colours[attention], marker="o", markersize=5, capsize=2, linewidth=0.8)
            ax.annotate(f"{seq_len}", (speed, accuracy), fontsize=7, xytext=(3, 3), textcoords="offset points")
            drawn = True
        front = pareto_front(points)
        if len(front) > 1:
            ax.plot([p[0] for p in front], [p[1] for p in front], linestyle="--", color="grey", linewidth=0.8)
    if not drawn:
        plt.close(fig)
        return None
    for attention, colour in colours.items():
        ax.scatter([], [], color=colour, label=attention)
    if chance is not None:
        ax.axhline(chance, color="red", linestyle=":", linewidth=1.2, label=f"chance ({chance:.2f})")
    ax.set_xscale("log")
    ax.set_xlabel("tokens/s (steady state)\nlabels: sequence length in tokens; dashed: Pareto front at each length\n"
                  "bars: std over seeds (one seed: 95 % binomial interval)",
                  fontsize=9)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs throughput (Pareto view)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_plots(table: AblationTable, out_dir: Path, chance: Optional[float] = None, caption: str = "") -> list[Path]:
    """The PNGs (those with at least one point) under ``out_dir/plots``; paths relative to ``out_dir``."""
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    kinds = {k for c in table.cells.values() for k in [c.peak_memory[1]] if k}
    memory_label = "peak memory (GiB, " + ("host RSS" if kinds == {"host_rss"} else "device" if kinds == {"device"}
                                           else "device or host RSS") + ")"
    written = [
        _line_plot(table, plot_dir / "throughput_vs_length.png", lambda c: c.tokens_per_sec,
                   "tokens/s (steady state)", "Throughput vs sequence length", log_y=True),
        _line_plot(table, plot_dir / "memory_vs_length.png", lambda c: c.peak_memory[0],
                   memory_label, "Peak memory vs sequence length", log_y=True),
        _accuracy_plot(table, plot_dir / "accuracy_vs_length.png", chance),
        _pareto_plot(table, plot_dir / "accuracy_vs_throughput.png", chance),
        write_heatmaps(table.attentions, _known(table.lengths), depth_profiles(table),
                       plot_dir / "depth_heatmaps.png", chance, caption),
    ]
    return [p.relative_to(out_dir) for p in written if p is not None]


def _known(lengths: list[Optional[int]]) -> list[int]:
    return [n for n in lengths if n is not None]


def depth_profiles(table: AblationTable) -> dict[str, dict[int, dict[int, tuple]]]:
    """{variant: {seq_len: {depth bucket: (mean, std, seeds)}}} over the completed jobs of each cell."""
    return {a: {n: mean_profile(table.cell(a, n).completed) for n in _known(table.lengths)} for a in table.attentions}


def depth_section(table: AblationTable, chance: Optional[float]) -> list[str]:
    """Markdown: the accuracy-by-depth table of every variant (nothing when no job logged depths)."""
    profiles = depth_profiles(table)
    lines: list[str] = []
    for variant in table.attentions:
        lines += depth_table_markdown(variant, _known(table.lengths), profiles[variant], chance)
    if not lines:
        return []
    return ["", "## Accuracy by evidence depth", "",
            "Rows: where in the video the evidence starts (0 % = first frame, farthest from the question asked "
            "after the video); columns: level-2 sequence length; mean ± std over seeds.", "", *lines]


def report_caption(summaries: list[dict[str, Any]], title: str) -> str:
    """One line for figures: the sweep, its devices and task families."""
    devices = sorted({str(s.get("device")) for s in summaries if s.get("device")})
    tasks = sorted({",".join(s.get("tasks") or []) for s in summaries if s.get("tasks")})
    parts = [f"sweep {title}", f"device {', '.join(devices) or '?'}"]
    if tasks:
        parts.append("tasks " + "; ".join(tasks))
    return " · ".join(parts)


# --- entry point --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportFiles:
    report: Path
    jobs_csv: Path
    plots: list[Path]


def write_report(sweep_dir: Path, out_dir: Optional[Path] = None, max_len_path: Optional[Path] = None) -> ReportFiles:
    """Read every summary.json under ``sweep_dir`` and write report.md, jobs.csv and plots/ to ``out_dir``
    (default: the sweep folder). ``max_len_path`` defaults to ``<sweep_dir>/max_seq_len.json`` if present."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep_dir} does not exist")
    summaries = load_summaries(sweep_dir)
    if not summaries:
        raise FileNotFoundError(f"no {SUMMARY_FILE} under {sweep_dir}; is it the folder of a sweep (hydra.sweep.dir)?")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    table = AblationTable.from_summaries(summaries)
    max_len = load_max_len(max_len_path if max_len_path is not None else sweep_dir / MAX_LEN_FILE)
    chance = chance_of(summaries)
    plots = write_plots(table, out_dir, chance, report_caption(summaries, sweep_dir.name))
    jobs_csv = out_dir / "jobs.csv"
    write_csv(summaries, jobs_csv)
    report = out_dir / "report.md"
    report.write_text(render_markdown(table, sweep_dir.name, summaries, max_len, plots, chance))
    return ReportFiles(report, jobs_csv, [out_dir / p for p in plots])
