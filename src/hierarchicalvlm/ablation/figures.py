"""The report's plots, each written as PNG and SVG with a caption (sweep, device, model size, command).

* throughput vs length and step time vs length (log-log): per-batch interquartile range as error bars, O(n)
  and O(n²) guide slopes through the shortest length, overhead-bound cells ringed;
* peak memory vs length, accuracy vs length (std over seeds, chance line);
* accuracy vs throughput with the Pareto front at each length, labels placed so that they do not overlap.

A cell with a failed, diverged or unfinished job is never dropped: the length plots mark it with an ✗ and a
label on a strip at the bottom, the Pareto plot lists it under the axes.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from .reach import wilson_interval

if TYPE_CHECKING:  # the report module imports this one
    from .report import AblationTable, Cell

Box = tuple[float, float, float, float]
LABEL_FONT = 7
CAPTION_WIDTH = 130  # characters per caption line


# --- placing labels -----------------------------------------------------------------------------
def _overlap(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def candidate_offsets(width: float, height: float, gaps: Sequence[float] = (5, 12, 22, 34, 48)
                      ) -> list[tuple[float, float]]:
    """Lower-left corners of a ``width`` x ``height`` label around its anchor, nearest first, in 8 directions."""
    offsets = []
    for gap in gaps:
        offsets += [(gap, gap), (gap, -gap - height), (-gap - width, gap), (-gap - width, -gap - height),
                    (gap, -height / 2), (-gap - width, -height / 2), (-width / 2, gap), (-width / 2, -gap - height)]
    return offsets


def place_labels(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]],
                 marker: float = 4.0) -> list[tuple[float, float]]:
    """Greedy, collision-avoiding placement: for each anchor (display units, e.g. pixels) the offset of its
    label's lower-left corner such that no label covers another label or any anchor's marker (a square of
    half-side ``marker``); where every candidate collides, the one with the least overlap."""
    taken: list[Box] = [(x - marker, y - marker, x + marker, y + marker) for x, y in anchors]
    offsets = []
    for (x, y), (width, height) in zip(anchors, sizes):
        best, best_overlap = None, float("inf")
        for dx, dy in candidate_offsets(width, height):
            box = (x + dx, y + dy, x + dx + width, y + dy + height)
            overlap = sum(_overlap(box, other) for other in taken)
            if overlap < best_overlap:
                best, best_overlap = (dx, dy), overlap
            if overlap == 0:
                break
        assert best is not None
        offsets.append(best)
        taken.append((x + best[0], y + best[1], x + best[0] + width, y + best[1] + height))
    return offsets


def text_size(text: str, fontsize: float, dpi: float, pad: float = 2.0) -> tuple[float, float]:
    """Approximate extent in pixels of one line of text (0.65 em per character, 1.3 em high) plus ``pad``."""
    em = fontsize * dpi / 72
    return 0.65 * em * len(text) + pad, 1.3 * em + pad


def format_count(value: Optional[float]) -> str:
    """1234 -> '1.23k', 2.5e6 -> '2.50M'."""
    if value is None or not math.isfinite(value):
        return "–"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.1f}"


def compact_log_ticks(axis: Any, low: float, high: float, count: int = 5) -> None:
    """A log axis spanning less than a decade gets ``count`` round ticks labelled '105k' instead of
    matplotlib's minor labels, which overlap on such a narrow range."""
    if low <= 0 or high / low >= 10:
        return
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ticks = sorted({float(f"{v:.2g}") for v in (low * (high / low) ** (i / (count - 1)) for i in range(count))})
    axis.set_ticks([t for t in ticks if low <= t <= high])
    axis.set_major_formatter(FuncFormatter(lambda v, _: format_count(v).replace(".00", "")))
    axis.set_minor_formatter(NullFormatter())


# --- shared pieces ------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, caption: str) -> Path:
    """Caption under the axes, then ``path`` (PNG) and the same figure as SVG beside it."""
    plt = _pyplot()
    if caption:
        text = "\n".join(textwrap.fill(line, CAPTION_WIDTH) for line in caption.splitlines())
        fig.text(0.01, 0.0, text, fontsize=6, va="top", ha="left", color="0.3")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    fig.savefig(path.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return path


def colours_of(table: "AblationTable") -> dict[str, str]:
    return {a: f"C{i % 10}" for i, a in enumerate(table.attentions)}


def cell_problems(cell: "Cell") -> Optional[str]:
    """'2 failed, 1 diverged' over the cell's jobs that have no final result (prefixed 'k/n' when others did)."""
    bad = [j.get("status") for j in cell.jobs if j.get("status") != "completed"]
    if not bad:
        return None
    text = ", ".join(f"{count} {status}" for status, count in Counter(bad).items())
    return f"{len(bad)}/{len(cell.jobs)}: {text}" if cell.completed else text


def mark_problems(ax: Any, table: "AblationTable", colours: dict[str, str]) -> int:
    """An ✗ with its label, on a strip at the bottom of the axes (one line per mechanism), at each length where
    a mechanism has failed, diverged or unfinished jobs; the y range is stretched down so that no data point
    lies on the strip (call it once the scales are set). Returns the number of marks."""
    marks = [(attention, n, problems) for attention in table.attentions for n in table.known_lengths
             for problems in [cell_problems(table.cell(attention, n))] if problems]
    rows = {attention: i for i, attention in enumerate(dict.fromkeys(a for a, _, _ in marks))}
    if marks and ax.has_data():
        ax.autoscale_view()
        low, high = ax.get_ylim()
        reserve = (0.1 + 0.065 * (len(rows) - 1)) / (0.9 - 0.065 * (len(rows) - 1))  # of the data's span
        log_y = ax.get_yscale() == "log" and low > 0
        ax.set_ylim(low / (high / low) ** reserve if log_y else low - (high - low) * reserve, high)
    strip = ax.get_xaxis_transform()  # x in data, y in axes fraction: works on any y scale
    for attention, n, problems in marks:
        y = 0.04 + 0.065 * rows[attention]
        ax.plot([n], [y], marker="x", markersize=8, markeredgewidth=2, color=colours[attention],
                transform=strip, clip_on=False, linestyle="none")
        ax.annotate(f"{attention}: {problems}", (n, y), xycoords=strip, xytext=(6, 0), textcoords="offset points",
                    fontsize=6, va="center", color=colours[attention])
    if marks:
        ax.plot([], [], marker="x", color="black", linestyle="none", markeredgewidth=2,
                label="✗ failed / diverged / unfinished")
    return len(marks)


def finish_length_plot(fig: Any, ax: Any, table: "AblationTable", drawn: bool, log_y: bool, labels: tuple[str, ...],
                       path: Path, caption: str) -> Optional[Path]:
    """Scales, problem marks, labels and legend of a plot against length; saved, or None with nothing on it."""
    if not drawn and not any(cell_problems(c) for c in table.cells.values()):
        _pyplot().close(fig)
        return None
    ax.set_xscale("log", base=2)
    if drawn and log_y:
        ax.set_yscale("log")
    mark_problems(ax, table, colours_of(table))
    _finish(ax, *labels)
    fig.tight_layout()
    return save_figure(fig, path, caption)


def guide_lines(ax: Any, lengths: list[int], anchor: float, slopes: dict[str, float]) -> None:
    """Dashed reference lines ``anchor * (n / n0) ** slope`` over ``lengths``, one per named slope."""
    if len(lengths) < 2 or anchor is None or anchor <= 0:
        return
    n0, n1 = lengths[0], lengths[-1]
    for (label, slope), style in zip(slopes.items(), ("--", ":")):
        ax.plot([n0, n1], [anchor, anchor * (n1 / n0) ** slope], linestyle=style, color="0.45", linewidth=1.0,
                label=label)


def _finish(ax: Any, xlabel: str, ylabel: str, title: str, legend_size: int = 8) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: covers no point


LENGTH_LABEL = "level-2 sequence length (tokens)"


# --- the plots ----------------------------------------------------------------------------------
def scaling_plot(table: "AblationTable", path: Path, value: Callable[["Cell"], Optional[float]],
                 spread: Callable[["Cell"], tuple[Optional[float], Optional[float]]], ylabel: str, title: str,
                 slopes: dict[str, float], caption: str) -> Optional[Path]:
    """Log-log ``value`` vs length per mechanism with the per-batch IQR as error bars, guide ``slopes``
    through the shortest length (geometric mean of the mechanisms there), overhead-bound cells ringed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = colours_of(table)
    drawn, ringed, first = False, False, []
    for attention in table.attentions:
        points = [(n, value(table.cell(attention, n)), spread(table.cell(attention, n))) for n in table.known_lengths]
        points = [p for p in points if p[1] is not None]
        if not points:
            continue
        errors = [[max(0.0, v - low) if low is not None else 0.0 for _, v, (low, _) in points],
                  [max(0.0, high - v) if high is not None else 0.0 for _, v, (_, high) in points]]
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=errors, marker="o", capsize=3,
                    color=colours[attention], label=attention)
        bound = [(n, v) for n, v, _ in points if table.overhead_bound(attention, n)]
        if bound:
            ax.scatter([n for n, _ in bound], [v for _, v in bound], s=160, facecolors="none", edgecolors="red",
                       linewidths=1.2, label=None if ringed else "overhead-bound (tokens/s rises with length)")
            ringed = True
        if points[0][0] == table.known_lengths[0]:
            first.append(points[0][1])
        drawn = True
    if first:
        guide_lines(ax, table.known_lengths, _geometric_mean(first), slopes)
    labels = (LENGTH_LABEL + "\nbars: per-batch interquartile range (mean over seeds)", ylabel, title)
    return finish_length_plot(fig, ax, table, drawn, True, labels, path, caption)


def _geometric_mean(values: list[float]) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else 0.0


def line_plot(table: "AblationTable", path: Path, value: Callable[["Cell"], Optional[float]], ylabel: str,
              title: str, caption: str) -> Optional[Path]:
    """Log-log ``value`` vs length per mechanism (peak memory), problem cells marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = colours_of(table)
    drawn = False
    for attention in table.attentions:
        points = [(n, value(table.cell(attention, n))) for n in table.known_lengths]
        points = [p for p in points if p[1] is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=colours[attention],
                    label=attention)
            drawn = True
    return finish_length_plot(fig, ax, table, drawn, True, (LENGTH_LABEL, ylabel, title), path, caption)


def accuracy_plot(table: "AblationTable", path: Path, chance: Optional[float], caption: str) -> Optional[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = colours_of(table)
    drawn = False
    for attention in table.attentions:
        points = [(n, *table.cell(attention, n).accuracy) for n in table.known_lengths]
        points = [p for p in points if p[1] is not None]
        if points:
            ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] or 0.0 for p in points],
                        marker="o", capsize=3, color=colours[attention], label=attention)
            drawn = True
    if chance is not None:
        ax.axhline(chance, color="red", linestyle=":", linewidth=1.2, label=f"chance ({chance:.2f})")
    labels = (LENGTH_LABEL, "accuracy (mean ± std over seeds)", "Accuracy vs sequence length")
    return finish_length_plot(fig, ax, table, drawn, False, labels, path, caption)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes (higher throughput and higher accuracy), by throughput."""
    front = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def accuracy_error(cell: "Cell") -> Optional[list[list[float]]]:
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


def pareto_plot(table: "AblationTable", path: Path, chance: Optional[float], caption: str) -> Optional[Path]:
    """Accuracy vs tokens/s, each point labelled with its length (labels placed clear of each other), the
    Pareto front at each length dashed; cells without a point listed under the axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = colours_of(table)
    labelled: list[tuple[float, float, str, str]] = []
    missing: list[str] = []
    for seq_len in table.lengths:
        points = []
        for attention in table.attentions:
            cell = table.cell(attention, seq_len)
            accuracy, speed = cell.accuracy[0], cell.tokens_per_sec
            problems = cell_problems(cell)
            if problems and seq_len is not None:
                missing.append(f"{attention} @ {seq_len:,}: {problems}")
            if accuracy is None or speed is None:
                continue
            points.append((speed, accuracy))
            ax.errorbar(speed, accuracy, xerr=cell.tokens_per_sec_std, yerr=accuracy_error(cell),
                        color=colours[attention], marker="o", markersize=5, capsize=2, linewidth=0.8)
            labelled.append((speed, accuracy, f"{seq_len}", colours[attention]))
        front = pareto_front(points)
        if len(front) > 1:
            ax.plot([p[0] for p in front], [p[1] for p in front], linestyle="--", color="grey", linewidth=0.8)
    if not labelled and not missing:
        plt.close(fig)
        return None
    for attention, colour in colours.items():
        ax.scatter([], [], color=colour, label=attention)
    if chance is not None:
        ax.axhline(chance, color="red", linestyle=":", linewidth=1.2, label=f"chance ({chance:.2f})")
    ax.set_xscale("log")
    _finish(ax, "tokens/s (steady state)\nlabels: sequence length in tokens; dashed: Pareto front at each length\n"
            "bars: std over seeds (one seed: 95 % binomial interval)", "accuracy",
            "Accuracy vs throughput (Pareto view)")
    ax.xaxis.label.set_fontsize(9)
    ax.autoscale_view()
    compact_log_ticks(ax.xaxis, *ax.get_xlim())
    fig.tight_layout()
    label_points(fig, ax, labelled)
    if missing:
        caption = "Not plotted (no final result): " + "; ".join(missing) + (f"\n{caption}" if caption else "")
    return save_figure(fig, path, caption)


def label_points(fig: Any, ax: Any, labelled: list[tuple[float, float, str, str]]) -> None:
    """Annotate (x, y, text, colour) points with labels that do not overlap; far ones get a leader line."""
    if not labelled:
        return
    ax.autoscale_view()
    scale = fig.dpi / 72  # pixels per point
    anchors = [tuple(ax.transData.transform((x, y))) for x, y, _, _ in labelled]
    sizes = [text_size(text, LABEL_FONT, fig.dpi) for _, _, text, _ in labelled]
    for (x, y, text, colour), (dx, dy), (width, height) in zip(labelled, place_labels(anchors, sizes), sizes):
        nearest = (min(max(0.0, dx), dx + width), min(max(0.0, dy), dy + height))  # of the label to its point
        far = math.hypot(*nearest) > 8 * scale
        ax.annotate(text, (x, y), xytext=(dx / scale, dy / scale), textcoords="offset points", fontsize=LABEL_FONT,
                    ha="left", va="bottom", color=colour,
                    arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.5} if far else None)
