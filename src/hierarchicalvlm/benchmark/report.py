"""Writing a run: ``results.csv``, ``results.md`` (tables, speed-ups, crossovers), plots and ``meta.json``."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

from .cases import BASELINE_PAIRS
from .measure import FULL_FASTEST, SYNCHRONIZED_TIMING, BenchmarkReport, CellResult
from .settings import BenchSettings

CSV_COLUMNS = (
    "mechanism", "kind", "scope", "length", "batch", "dtype", "device", "fwd_bwd_ms", "peak_mib", "activation_mib",
    "memory", "status", "torch", "date", "note",
)


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}"
    return value


def write_csv(rows: Sequence[CellResult], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            record = dataclasses.asdict(row)
            writer.writerow([_csv_value(record[column]) for column in CSV_COLUMNS])


def reference_name(rows: Sequence[CellResult]) -> Optional[str]:
    """The full-attention row the others are compared with: ``full (fastest)`` on GPU, ``full`` on CPU."""
    names = {r.mechanism for r in rows}
    return FULL_FASTEST if FULL_FASTEST in names else ("full" if "full" in names else None)


def _row_order(rows: Sequence[CellResult]) -> list[str]:
    order: list[str] = []
    for row in rows:
        if row.mechanism not in order:
            order.append(row.mechanism)
    reference = reference_name(rows)
    if reference in order:  # reference right after the other full rows
        order.remove(reference)
        last_full = max((i for i, n in enumerate(order) if n.startswith("full")), default=-1)
        order.insert(last_full + 1, reference)
    return order


def _lookup(rows: Sequence[CellResult]) -> dict[tuple[str, int], CellResult]:
    return {(r.mechanism, r.length): r for r in rows}


def speedup(reference: Optional[CellResult], row: Optional[CellResult], field: str = "fwd_bwd_ms") -> Optional[float]:
    """``reference / row`` of a field; ``inf`` when only the reference ran out of memory; ``None`` if not comparable."""
    if reference is None or row is None or not row.ok:
        return None
    if not reference.ok:
        return math.inf if reference.status.startswith("OOM") else None
    ours, theirs = getattr(row, field), getattr(reference, field)
    if math.isnan(ours) or math.isnan(theirs) or ours <= 0:
        return None
    return theirs / ours


def crossover_length(rows: Sequence[CellResult], name: str, reference: str, lengths: Sequence[int]) -> Optional[int]:
    """Shortest length from which ``name`` is faster than ``reference`` at that and every longer measured length.

    A length where ``name`` failed (OOM, error) ends the search; lengths without a comparison are passed over.
    """
    table = _lookup(rows)
    crossing = None
    for length in sorted(lengths, reverse=True):
        row = table.get((name, length))
        ratio = speedup(table.get((reference, length)), row)
        if ratio is None:
            if row is not None and not row.ok and row.status != "skipped":
                break
            continue
        if ratio <= 1.0:
            break
        crossing = length
    return crossing


def _fmt_ratio(ratio: Optional[float], out_of_memory: str) -> str:
    if ratio is None:
        return "—"
    return f"∞ ({out_of_memory} OOM)" if math.isinf(ratio) else f"{ratio:.2f}×"


def _fmt_cell(row: Optional[CellResult]) -> str:
    if row is None:
        return "—"
    if not row.ok:
        return row.status.split(":")[0] if row.status.startswith("error") else row.status
    memory = "" if math.isnan(row.activation_mib) else f" · {row.activation_mib:,.0f} MiB"
    return f"{row.fwd_bwd_ms:,.1f} ms{memory}"


def _length_label(length: int) -> str:
    return f"{length // 1024}K" if length >= 1024 and length % 1024 == 0 else str(length)


def layer_mode(settings: BenchSettings) -> str:
    """How the layer rows ran: eager, or each whole layer under torch.compile."""
    if settings.compile_layers:
        return ("every layer row (ours, full and the FlexAttention baselines) under `torch.compile(dynamic=False)`, "
                "as a compiled training run runs it; the core rows eager")
    return "eager modules (their own kernels compiled inside where they compile them); the core rows eager"


def memory_description(settings: BenchSettings) -> str:
    """What the MiB figures of a run mean."""
    if settings.device == "cuda":
        return "CUDA allocator: peak during one warm fwd+bwd minus the inputs and weights allocated before it"
    if settings.isolation == "none":
        return "not measured (in-process CPU run)"
    return ("host memory: peak RSS during the first full-size fwd+bwd minus the RSS just before it, one fresh "
            "process per cell (after one tiny call of the same case that loads its libraries)")


class _Tables:
    """Row lookups shared by the markdown sections."""

    def __init__(self, report: BenchmarkReport) -> None:
        self.rows = report.rows
        self.lengths = list(report.settings.lengths)
        self.cells = _lookup(report.rows)
        self.order = _row_order(report.rows)
        self.kinds = {r.mechanism: (r.kind, r.scope) for r in report.rows}
        self.reference = reference_name(report.rows)
        self.head = " | ".join(_length_label(n) for n in self.lengths)
        self.sep = "|".join(["---"] * (len(self.lengths) + 1))

    def ratios(self, numerator: str, denominator: str, field: str = "fwd_bwd_ms") -> str:
        """``numerator / denominator`` of ``field`` at every length, formatted as table cells."""
        label = "full" if numerator.startswith("full") else numerator
        return " | ".join(
            _fmt_ratio(speedup(self.cells.get((numerator, n)), self.cells.get((denominator, n)), field), label)
            for n in self.lengths
        )


def _header_lines(report: BenchmarkReport) -> list[str]:
    settings, meta = report.settings, report.meta
    machine = f"{meta['device']} · torch {meta['torch']}"
    if settings.device == "cuda":
        machine += f" · CUDA {meta.get('cuda')}" + (f" · triton {meta['triton']}" if meta.get("triton") else "")
    return [
        "# Attention benchmark: forward + backward time and memory over sequence length",
        "",
        f"- **Machine:** {machine} · {meta['cpu_threads']} CPU threads",
        f"- **Shapes:** dim {settings.dim}, {settings.heads} heads × {settings.dim // settings.heads}; "
        f"{settings.batch_tokens} tokens per step (batch = {settings.batch_tokens} / length); "
        f"precision {settings.precision}",
        "- **Step:** forward of an input that requires grad, backward from a fixed random upstream gradient (no loss); "
        f"median of {settings.repeats} timed calls after {settings.warmup} untimed warm-up call(s)"
        + (f" ({meta.get('timing', SYNCHRONIZED_TIMING)})" if meta.get("device_type") == "cuda" else ""),
        f"- **Layers:** {layer_mode(settings)}",
        f"- **Memory:** {memory_description(settings)}",
        f"- **Date:** {meta['date']} · wall time {meta['wall_seconds']} s",
        f"- **Command:** `{meta['command']}`",
        "",
        "Mechanism knobs (from `conf/attention/*.yaml` plus `--set`):",
        "",
        *[f"- `{name}`: {knobs}" for name, knobs in meta["mechanism_knobs"].items()],
    ]


def _time_memory_lines(t: _Tables) -> list[str]:
    lines = [
        "",
        "## Time and memory per fwd+bwd step",
        "",
        "Cells: median ms · MiB (see Memory above). `ours` = this repository; `baseline` = external code, for "
        "comparison only. `layer` rows include the q/k/v and output projections (comparable with full attention); "
        "`core` rows are the attention operation alone (comparable only with the core they are paired with).",
        "",
        f"| mechanism | kind | scope | {t.head} |",
        f"|---|---|{t.sep}|",
    ]
    for name in t.order:
        kind, scope = t.kinds[name]
        cells = " | ".join(_fmt_cell(t.cells.get((name, n))) for n in t.lengths)
        lines.append(f"| {name} | {kind} | {scope} | {cells} |")
    return lines


def _versus_full_lines(t: _Tables) -> list[str]:
    compared = [n for n in t.order if t.kinds[n][1] == "layer" and n != t.reference and not n.startswith("full[")]
    if not t.reference or not compared:
        return []
    longest = _length_label(max(t.lengths))
    lines = [
        "",
        f"## Speed-up over `{t.reference}` (time of full / time of mechanism; > 1 = faster than full)",
        "",
        "Crossover: the shortest measured length from which the mechanism is faster than full attention at that "
        "and every longer length.",
        "",
        f"| mechanism | {t.head} | crossover |",
        f"|{t.sep}|---|",
    ]
    for name in compared:
        cross = crossover_length(t.rows, name, t.reference, t.lengths)
        crossover = _length_label(cross) if cross else f"none ≤ {longest}"
        lines.append(f"| {name} | {t.ratios(t.reference, name)} | {crossover} |")
    lines += [
        "",
        f"## Memory saving over `{t.reference}` (MiB of full / MiB of mechanism)",
        "",
        f"| mechanism | {t.head} |",
        f"|{t.sep}|",
    ]
    lines += [f"| {name} | {t.ratios(t.reference, name, 'activation_mib')} |" for name in compared]
    return lines


def _baseline_lines(t: _Tables, meta: dict[str, Any]) -> list[str]:
    pairs = [(ours, theirs) for ours, theirs in BASELINE_PAIRS if ours in t.kinds and theirs in t.kinds]
    if not pairs:
        return []
    lines = [
        "",
        "## Ours vs external baselines (time of baseline / time of ours; > 1 = ours faster)",
        "",
        f"| ours | baseline | {t.head} |",
        f"|---|{t.sep}|",
    ]
    lines += [f"| {ours} | {theirs} | {t.ratios(theirs, ours)} |" for ours, theirs in pairs]
    if meta.get("flex_masks"):
        lines += ["", "Flex masks: " + "; ".join(f"`{k}`: {v}" for k, v in meta["flex_masks"].items()) + "."]
    lines += [f"- agreement {check}: {outcome}" for check, outcome in meta.get("agreement", {}).items()]
    return lines


def render_markdown(report: BenchmarkReport) -> str:
    """``results.md``: settings, the time/memory table, speed-ups with crossovers, memory ratios, baseline pairs."""
    t = _Tables(report)
    lines = _header_lines(report) + _time_memory_lines(t) + _versus_full_lines(t) + _baseline_lines(t, report.meta)
    if report.meta.get("partial"):
        planned = len(report.meta.get("cases", [])) * len(report.settings.lengths)
        if len(report.rows) < planned:
            what = (f"it stopped after {len(report.rows)} of {planned} planned cells; the cells below are those it "
                    "measured (the rest are missing, not failed).")
        else:
            what = (f"it measured all {planned} planned cells and stopped after them, before the baseline agreement "
                    "check and the derived rows.")
        lines[1:1] = ["", f"**Partial run:** {what}"]
    if report.not_run:
        lines += ["", "## Not run", ""] + [f"- `{name}`: {reason}" for name, reason in report.not_run.items()]
    failed = [r for r in report.rows if not r.ok and r.status not in ("OOM", "skipped")]
    if failed:
        lines += ["", "## Failed cells", ""]
        lines += [f"- {r.mechanism} at {r.length}: {r.status} {r.note}".rstrip() for r in failed]
    return "\n".join(lines) + "\n"


def _line_style(row: CellResult) -> str:
    """Solid: our layers; dotted: our cores; dashed: external baselines."""
    if row.kind == "baseline":
        return "--"
    return "-" if row.scope == "layer" else ":"


def plot_results(report: BenchmarkReport, out_dir: Path) -> list[Path]:
    """``time_vs_length.png`` and ``memory_vs_length.png``: log-log, one line per row (cells that ran)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, settings = report.rows, report.settings
    memory_label = "host peak-RSS growth (MiB)" if settings.device == "cpu" else "activation memory (MiB, CUDA)"
    written = []
    for field, filename, label in (
        ("fwd_bwd_ms", "time_vs_length.png", "fwd+bwd time per step (ms)"),
        ("activation_mib", "memory_vs_length.png", memory_label),
    ):
        fig, axis = plt.subplots(figsize=(8, 5.5))
        for name in _row_order(rows):
            ran = [r for r in rows if r.mechanism == name and r.ok and getattr(r, field) > 0]  # NaN > 0 is False
            if ran:
                points = sorted((r.length, getattr(r, field)) for r in ran)
                suffix = " (baseline)" if ran[0].kind == "baseline" else ""
                axis.plot(*zip(*points), _line_style(ran[0]), marker="o", markersize=3, label=name + suffix)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("sequence length (tokens)")
        axis.set_ylabel(label)
        axis.set_title(f"{report.meta['device']} · {settings.precision} · {settings.batch_tokens} tokens per step",
                       fontsize=9)
        axis.grid(True, which="both", alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def write_data(report: BenchmarkReport, out_dir: Path) -> None:
    """results.csv and meta.json only: what ``--render-only`` turns into tables and plots (also a partial run's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(report.rows, out_dir / "results.csv")
    (out_dir / "meta.json").write_text(json.dumps(report.meta, indent=2, default=str) + "\n")


def write_report(report: BenchmarkReport, out_dir: Path, data: bool = True) -> str:
    """Write results.md and the plots (and, with ``data``, results.csv and meta.json) into ``out_dir``.

    Returns the markdown.
    """
    if data:
        write_data(report, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report)
    (out_dir / "results.md").write_text(markdown)
    plot_results(report, out_dir)
    return markdown


def read_report(out_dir: Path) -> BenchmarkReport:
    """A finished run back from its ``results.csv`` and ``meta.json`` (to re-render tables and plots)."""
    csv_path, meta_path = out_dir / "results.csv", out_dir / "meta.json"
    if not csv_path.is_file() or not meta_path.is_file():
        raise ValueError(f"{out_dir} has no results.csv and meta.json to render; run the benchmark with --out first")
    types = {field.name: field.type for field in dataclasses.fields(CellResult)}
    rows = []
    with csv_path.open() as handle:
        for record in csv.DictReader(handle):
            values: dict[str, Any] = {}
            for name, text in record.items():
                if types[name] in ("float", float):
                    values[name] = float(text) if text else math.nan
                elif types[name] in ("int", int):
                    values[name] = int(text)
                else:
                    values[name] = text
            rows.append(CellResult(**values))
    meta = json.loads(meta_path.read_text())
    saved = dict(meta["settings"])
    settings = BenchSettings(**{**saved, "lengths": tuple(saved["lengths"]), "mechanisms": tuple(saved["mechanisms"])})
    return BenchmarkReport(settings, rows, meta, meta.get("not_run", {}))
