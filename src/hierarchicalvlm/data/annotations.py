"""Annotation files of real video-language data, and the datasets and data module built on them.

An annotation file lists one sample per row, as CSV/TSV (a header row names the columns) or
JSONL (one JSON object per line):

==========  ========  =====================================================================
column      required  meaning
==========  ========  =====================================================================
video       yes       path of the video (or feature file) relative to the root, or absolute
caption     no        free text; required non-empty when the data module asks for captions
question    no        free text
answer      no        the answer to ``question`` (a sample without one has no QA label)
start, end  no        clip bounds in seconds (both optional; ``end`` must be > ``start``)
split       no        ``train``, ``val`` or ``test``
id          no        sample name used in logs (default: the video path plus the clip bounds)
==========  ========  =====================================================================

A malformed file is rejected as a whole before any training with every problem and its line
number (:class:`AnnotationError`), so a typo costs one run, not one epoch.

The second half of the module holds what the file-backed data choices (``data=video_text``,
``data=features``) share: a dataset that applies the bad-sample policy (``fail`` or ``skip``)
and a data module that reads, validates and splits annotations and builds the vocabularies from
them without decoding any video.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence

from torch.utils.data import Dataset

from hierarchicalvlm.data.base import Batch, Sample, VideoTextDataModule

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
COLUMNS = ("video", "caption", "question", "answer", "start", "end", "split", "id")
ON_BAD_SAMPLE = ("fail", "skip")
MAX_LISTED_PROBLEMS = 20


# ----------------------------------------------------------------------------------------------
# Reading and validating annotation files
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Annotation:
    """One validated row of an annotation file."""

    video: str  # the path as written in the file
    caption: str
    question: str
    answer: Optional[str]
    start: Optional[float]
    end: Optional[float]
    split: Optional[str]
    sample_id: Optional[str]
    source: str  # annotation file the row came from
    line: int  # 1-based line number in ``source``

    @property
    def video_id(self) -> str:
        """Name of the sample in logs and batches: the ``id`` column, else the video path and clip bounds."""
        if self.sample_id:
            return self.sample_id
        name = str(Path(self.video).with_suffix("").as_posix())
        if self.start is None and self.end is None:
            return name
        start = "" if self.start is None else f"{self.start:g}"
        end = "" if self.end is None else f"{self.end:g}"
        return f"{name}#{start}-{end}"

    @property
    def where(self) -> str:
        """``file:line`` of the row, for error messages."""
        return f"{self.source}:{self.line}"

    def resolve(self, root: Optional[str | Path]) -> Path:
        """Absolute path of the row's file: ``video`` itself if absolute, else ``root / video``."""
        path = Path(self.video).expanduser()
        if path.is_absolute():
            return path
        if root is None:
            raise ValueError(
                f"{self.where}: video path {self.video!r} is relative but no root directory is set; "
                "set data.video_root (or data.feature_root) or write absolute paths"
            )
        return Path(root).expanduser() / path


class AnnotationProblem(NamedTuple):
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class AnnotationError(ValueError):
    """An annotation file (or a set of them) is malformed; ``problems`` lists every bad line."""

    def __init__(self, problems: Sequence[AnnotationProblem], hint: str = "") -> None:
        self.problems = list(problems)
        by_file: dict[str, list[AnnotationProblem]] = {}
        for problem in self.problems:
            by_file.setdefault(problem.source, []).append(problem)
        parts = []
        for source, items in by_file.items():
            listed = "\n".join(f"  {p}" for p in items[:MAX_LISTED_PROBLEMS])
            more = f"\n  ... and {len(items) - MAX_LISTED_PROBLEMS} more" if len(items) > MAX_LISTED_PROBLEMS else ""
            parts.append(f"{source}: {len(items)} problem(s):\n{listed}{more}")
        super().__init__("\n".join(parts) + (f"\n{hint}" if hint else ""))


def _parse_seconds(value: Any, column: str) -> tuple[Optional[float], Optional[str]]:
    """Parse an optional non-negative finite number of seconds: ``(value, problem)``."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None, None
    if isinstance(value, bool):
        return None, f"{column} must be a number of seconds, got {value!r}"
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None, f"{column} must be a number of seconds, got {value!r}"
    if not math.isfinite(seconds) or seconds < 0:
        return None, f"{column} must be a finite number of seconds >= 0, got {value!r}"
    return seconds, None


def _parse_text(value: Any, column: str) -> tuple[str, Optional[str]]:
    """Text cells: strings (stripped), integers (``answer: 3``) or empty/null."""
    if value is None:
        return "", None
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), None
    return "", f"{column} must be text, got {type(value).__name__} {value!r}"


def _validate_row(
    values: dict[str, Any], source: str, line: int, require_captions: bool
) -> tuple[Optional[Annotation], list[str]]:
    """Turn one raw row into an :class:`Annotation`, or return the list of its problems."""
    problems: list[str] = []
    video, problem = _parse_text(values.get("video"), "video")
    if problem:
        problems.append(problem)
    elif not video:
        problems.append("empty video path")
    texts = {}
    for column in ("caption", "question", "answer", "id"):
        texts[column], problem = _parse_text(values.get(column), column)
        if problem:
            problems.append(problem)
    if require_captions and not texts["caption"]:
        problems.append("empty caption (this data module requires a caption for every sample)")
    if texts["answer"] and not texts["question"]:
        problems.append("answer given without a question")
    start, problem = _parse_seconds(values.get("start"), "start")
    if problem:
        problems.append(problem)
    end, problem = _parse_seconds(values.get("end"), "end")
    if problem:
        problems.append(problem)
    if start is not None and end is not None and end <= start:
        problems.append(f"end ({end:g} s) must be greater than start ({start:g} s)")
    split_text, problem = _parse_text(values.get("split"), "split")
    split = split_text.lower() or None  # an empty cell means "no split given"
    if problem:
        problems.append(problem)
    elif split is not None and split not in SPLITS:
        problems.append(f"split must be one of {', '.join(SPLITS)}, got {values.get('split')!r}")
    if problems:
        return None, problems
    row = Annotation(
        video=video,
        caption=texts["caption"],
        question=texts["question"],
        answer=texts["answer"] if texts["question"] else None,
        start=start,
        end=end,
        split=split,
        sample_id=texts["id"] or None,
        source=source,
        line=line,
    )
    return row, []


def _unknown_column_problem(name: str) -> str:
    close = difflib.get_close_matches(name, COLUMNS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown column {name!r}{hint}; allowed columns: {', '.join(COLUMNS)}"


def utf8_problems(data: bytes) -> list[tuple[int, str]]:
    """``(line, problem)`` for every line of ``data`` that is not valid UTF-8 (none for a good file)."""
    problems = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append((number, (
                f"not valid UTF-8 (byte 0x{line[err.start]:02x} at column {err.start + 1}); save the file as UTF-8, "
                "e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8 (if it is Latin-1)")))
    return problems


def read_utf8(path: Path) -> tuple[Optional[str], list[tuple[int, str]]]:
    """The text of ``path`` (a UTF-8 byte-order mark dropped), or ``None`` and the problem of each bad line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return None, utf8_problems(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)


def _read_delimited(path: Path, delimiter: str) -> Iterable[tuple[int, Optional[dict[str, Any]], list[str]]]:
    """Yield ``(line, values, problems)`` for each row of a CSV/TSV file with a header."""
    text, bad_lines = read_utf8(path)
    if text is None:
        for line, problem in bad_lines:
            yield line, None, [problem]
        return
    with io.StringIO(text, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            yield 1, None, ["the file is empty (expected a header row naming the columns)"]
            return
        columns = [name.strip().lower() for name in header]
        header_problems = [_unknown_column_problem(name) for name in columns if name not in COLUMNS]
        header_problems += [f"column {name!r} appears twice" for name in set(columns) if columns.count(name) > 1]
        if "video" not in columns:
            header_problems.append(f"missing column 'video' (header is {header})")
        if header_problems:
            yield 1, None, header_problems
            return
        previous_end = reader.line_num
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if len(cells) != len(columns):
                yield line, None, [
                    f"expected {len(columns)} fields ({', '.join(columns)}), got {len(cells)}; "
                    "quote fields that contain the delimiter"
                ]
                continue
            yield line, dict(zip(columns, cells)), []


def _read_jsonl(path: Path) -> Iterable[tuple[int, Optional[dict[str, Any]], list[str]]]:
    """Yield ``(line, values, problems)`` for each non-blank line of a JSONL file."""
    content, bad_lines = read_utf8(path)
    if content is None:
        for line, problem in bad_lines:
            yield line, None, [problem]
        return
    with io.StringIO(content) as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                values = json.loads(text)
            except json.JSONDecodeError as err:
                yield line, None, [f"invalid JSON ({err.msg} at column {err.colno})"]
                continue
            if not isinstance(values, dict):
                yield line, None, [f"expected a JSON object, got {type(values).__name__}"]
                continue
            unknown = [_unknown_column_problem(key) for key in values if key not in COLUMNS]
            if "video" not in values:
                unknown.append("missing key 'video'")
            yield line, (None if unknown else values), unknown


def read_annotations(path: str | Path, require_captions: bool = False) -> list[Annotation]:
    """Read and validate a ``.csv``, ``.tsv`` or ``.jsonl`` annotation file.

    Raises :class:`AnnotationError` listing every malformed line (with its number) — nothing is
    returned from a file that has any problem, so a half-read file can never start a training run.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = _read_delimited(path, "," if suffix == ".csv" else "\t")
    elif suffix in (".jsonl", ".ndjson"):
        rows = _read_jsonl(path)
    else:
        raise ValueError(f"annotation file {path} must end in .csv, .tsv or .jsonl, got {suffix or 'no suffix'!r}")
    source = str(path)
    annotations: list[Annotation] = []
    problems: list[AnnotationProblem] = []
    for line, values, row_problems in rows:
        if values is not None and not row_problems:
            row, row_problems = _validate_row(values, source, line, require_captions)
            if row is not None:
                annotations.append(row)
        problems += [AnnotationProblem(source, line, message) for message in row_problems]
    if not problems and not annotations:
        problems.append(AnnotationProblem(source, 0, "the file has no samples"))
    if problems:
        raise AnnotationError(problems)
    return annotations


def write_annotations(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write rows (dicts keyed by :data:`COLUMNS`) as CSV/TSV/JSONL, chosen by the file suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unknown = sorted({key for row in rows for key in row} - set(COLUMNS))
    if unknown:
        raise ValueError(f"rows have unknown keys {unknown}; allowed: {', '.join(COLUMNS)}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False) + "\n")
    elif suffix in (".csv", ".tsv"):
        columns = [c for c in COLUMNS if any(c in row for row in rows)]
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, delimiter="," if suffix == ".csv" else "\t")
            writer.writeheader()
            writer.writerows([{c: ("" if row.get(c) is None else row[c]) for c in columns} for row in rows])
    else:
        raise ValueError(f"annotation output {path} must end in .csv, .tsv or .jsonl")
    return path


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------
def _stable_rank(video: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{video}".encode()).hexdigest()


def hash_split(
    rows: Sequence[Annotation], ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[Annotation]]:
    """Deterministic split by video: all clips of a video land in the same split (no leakage).

    Videos are ordered by a hash of ``seed`` and their path (the same on every machine and in
    every run) and cut by ``ratios`` (train, val, test); each split with a positive ratio gets at
    least one video when there are enough videos. Adding videos can move a few videos between
    splits — freeze a split by writing a ``split`` column (``scripts/build_annotations.py --split``).
    """
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"split_ratios must be three numbers >= 0 (train, val, test), got {list(ratios)}")
    if ratios[0] <= 0:
        raise ValueError(f"split_ratios must give the train split a positive share, got {list(ratios)}")
    def video_of(row: Annotation) -> str:  # "./a.mp4" and "a.mp4" are one video
        return Path(row.video).as_posix()

    videos = sorted({video_of(row) for row in rows}, key=lambda v: _stable_rank(v, seed))
    total = sum(ratios)
    counts = [int(math.floor(len(videos) * r / total)) for r in ratios]
    for i in (1, 2):  # small datasets: give every requested split one video, if train keeps one
        if ratios[i] > 0 and counts[i] == 0 and len(videos) - counts[1] - counts[2] > 1:
            counts[i] = 1
    counts[0] = len(videos) - counts[1] - counts[2]
    assignment: dict[str, str] = {}
    start = 0
    for split, count in zip(SPLITS, counts):
        for video in videos[start : start + count]:
            assignment[video] = split
        start += count
    out: dict[str, list[Annotation]] = {s: [] for s in SPLITS}
    for row in rows:
        out[assignment[video_of(row)]].append(row)
    return out


def load_split_annotations(
    annotations: Optional[str | Path] = None,
    train_annotations: Optional[str | Path] = None,
    val_annotations: Optional[str | Path] = None,
    test_annotations: Optional[str | Path] = None,
    split_ratios: Sequence[float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
    require_captions: bool = False,
) -> dict[str, list[Annotation]]:
    """Read annotations and split them, from one of three sources.

    * separate files per split (``train_annotations`` plus optional ``val_``/``test_annotations``);
    * one file with a ``split`` column on every row;
    * one file without a ``split`` column: :func:`hash_split` with ``split_ratios``.
    """
    per_split = {"train": train_annotations, "val": val_annotations, "test": test_annotations}
    if annotations is not None and any(v is not None for v in per_split.values()):
        raise ValueError(
            "give either data.annotations (one file) or data.train_annotations/val_annotations/test_annotations, "
            "not both; set data.annotations=null to use per-split files"
        )
    if annotations is None:
        if train_annotations is None:
            raise ValueError("no annotations: set data.annotations=FILE (or data.train_annotations=FILE)")
        out: dict[str, list[Annotation]] = {s: [] for s in SPLITS}
        problems = []
        for split, file in per_split.items():
            if file is None:
                continue
            rows = read_annotations(file, require_captions)
            problems += [
                AnnotationProblem(r.source, r.line, f"split column says {r.split!r} but the file is the {split} file")
                for r in rows
                if r.split is not None and r.split != split
            ]
            out[split] = rows
        if problems:
            raise AnnotationError(problems)
    else:
        rows = read_annotations(annotations, require_captions)
        with_split = [r for r in rows if r.split is not None]
        if with_split and len(with_split) != len(rows):
            raise AnnotationError(
                [AnnotationProblem(r.source, r.line, "empty split (other rows have one)") for r in rows if r.split is None]
            )
        if with_split:
            out = {s: [r for r in rows if r.split == s] for s in SPLITS}
        else:
            out = hash_split(rows, split_ratios, split_seed)
    if not out["train"]:
        raise ValueError(f"the train split is empty (annotations: {annotations or train_annotations})")
    for split in ("val", "test"):
        if not out[split]:
            log.warning("the %s split is empty", split)
    return out


# ----------------------------------------------------------------------------------------------
# Bad samples and the dataset that applies the policy
# ----------------------------------------------------------------------------------------------
class BadSampleError(ValueError):
    """A sample's file is missing, unreadable or of the wrong shape; the message names the file."""


class SkippedSample(NamedTuple):
    """What a dataset returns in place of a bad sample under ``on_bad_sample: skip``.

    It plays the role of ``None`` (the collate drops it) but carries the sample's name, the reason, the
    annotation row (``where`` = ``file:line``), the row's ``video`` path and its ``split``, so the batch can
    report what was dropped and the data module can name each bad file once (:class:`SkipLog`).
    """

    video_id: str
    reason: str
    where: str = ""
    video: str = ""
    split: str = ""


class SkipLog:
    """The samples skipped during a run, counted per split and per file.

    The first skip of each file in a split is logged (warning) with its annotation file, line and reason;
    later skips of that file are counted only, so a bad file read every epoch does not flood the log.
    """

    def __init__(self) -> None:
        self.reads: dict[str, Counter[str]] = {}  # split -> video file -> skipped reads
        self.first: dict[tuple[str, str], SkippedSample] = {}

    def record(self, sample: SkippedSample) -> None:
        split = sample.split or "?"
        self.reads.setdefault(split, Counter())[sample.video] += 1
        if (split, sample.video) not in self.first:
            self.first[(split, sample.video)] = sample
            log.warning("skipping bad sample %r of the %s split (%s): %s",
                        sample.video_id, split, sample.where or "?", sample.reason)

    def counts(self) -> dict[str, int]:
        """Skipped reads per split."""
        return {split: sum(files.values()) for split, files in self.reads.items()}

    def summary(self) -> str:
        """One line per split: reads skipped, the files and each file's count and first reason."""
        lines = []
        for split, files in self.reads.items():
            named = ", ".join(f"{video} x{count} ({self.first[(split, video)].where})"
                              for video, count in files.most_common(MAX_LISTED_PROBLEMS))
            more = f" and {len(files) - MAX_LISTED_PROBLEMS} more" if len(files) > MAX_LISTED_PROBLEMS else ""
            lines.append(f"{split}: {sum(files.values())} skipped read(s) of {len(files)} file(s): {named}{more}")
        return "\n".join(lines)


def check_on_bad_sample(on_bad_sample: str) -> str:
    if on_bad_sample not in ON_BAD_SAMPLE:
        raise ValueError(f"on_bad_sample must be one of {', '.join(ON_BAD_SAMPLE)}, got {on_bad_sample!r}")
    return on_bad_sample


class AnnotationDataset(Dataset):
    """Samples of one split: annotation text plus frames read by ``load_frames(row, train)``.

    A :class:`BadSampleError` from the loader raises (``fail``) or turns the sample into a
    :class:`SkippedSample` (``skip``); any other error is re-raised with the sample's file and
    line, so a crash mid-epoch always says which file caused it.
    """

    def __init__(
        self,
        rows: Sequence[Annotation],
        load_frames: Callable[[Annotation, bool], Any],
        train: bool,
        on_bad_sample: str = "fail",
        split: Optional[str] = None,
    ) -> None:
        self.rows = list(rows)
        self.load_frames = load_frames
        self.train = train
        self.split = split or ("train" if train else "eval")
        self.on_bad_sample = check_on_bad_sample(on_bad_sample)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Sample | SkippedSample:
        row = self.rows[index]
        try:
            frames = self.load_frames(row, self.train)
        except BadSampleError as err:
            if self.on_bad_sample == "skip":
                return SkippedSample(row.video_id, str(err), row.where, row.video, self.split)
            raise BadSampleError(f"sample {row.video_id!r} ({row.where}): {err}") from err
        except Exception as err:
            raise RuntimeError(f"unexpected error loading sample {row.video_id!r} ({row.where}): {err}") from err
        return {
            "frames": frames,
            "caption": row.caption,
            "question": row.question,
            "answer": row.answer,
            "video_id": row.video_id,
        }


# ----------------------------------------------------------------------------------------------
# The data module shared by the file-backed data choices
# ----------------------------------------------------------------------------------------------
class AnnotatedDataModule(VideoTextDataModule):
    """Base of ``data=video_text`` and ``data=features``: annotations, splits, bad-sample policy.

    Subclasses implement :meth:`sample_path` (the file a row reads), :meth:`frame_loader` (a
    picklable ``(row, train) -> frames`` callable, shipped to loader workers) and
    :meth:`input_spec`. ``loader``: batch size, workers and the other options of :class:`VideoTextDataModule`.
    """

    def __init__(
        self,
        annotations: Optional[str] = None,
        train_annotations: Optional[str] = None,
        val_annotations: Optional[str] = None,
        test_annotations: Optional[str] = None,
        split_ratios: Sequence[float] = (0.8, 0.1, 0.1),
        split_seed: int = 0,
        require_captions: bool = False,
        on_bad_sample: str = "fail",
        **loader: Any,
    ) -> None:
        super().__init__(**loader)
        self.annotation_files = {
            "annotations": annotations,
            "train_annotations": train_annotations,
            "val_annotations": val_annotations,
            "test_annotations": test_annotations,
        }
        self.split_ratios = tuple(split_ratios)
        self.split_seed = split_seed
        self.require_captions = require_captions
        self.on_bad_sample = check_on_bad_sample(on_bad_sample)
        self.rows: dict[str, list[Annotation]] = {}
        self.skip_log = SkipLog()

    # --- to implement -------------------------------------------------------------------------
    def sample_path(self, row: Annotation) -> Path:
        """The file ``row`` reads (raise :class:`BadSampleError` if it cannot be determined)."""
        raise NotImplementedError

    def frame_loader(self) -> Callable[[Annotation, bool], Any]:
        raise NotImplementedError

    def prepare_rows(self, rows: dict[str, list[Annotation]]) -> None:
        """Hook called once the rows are read and checked (e.g. to infer a feature size)."""

    # --- shared -------------------------------------------------------------------------------
    def build_splits(self) -> dict[str, Dataset]:
        self.rows = load_split_annotations(
            **self.annotation_files,
            split_ratios=self.split_ratios,
            split_seed=self.split_seed,
            require_captions=self.require_captions,
        )
        self._check_files()
        self.prepare_rows(self.rows)
        loader = self.frame_loader()
        return {
            split: AnnotationDataset(rows, loader, train=(split == "train"), on_bad_sample=self.on_bad_sample,
                                     split=split)
            for split, rows in self.rows.items()
        }

    def _check_files(self) -> None:
        """Find missing and empty files before training: ``fail`` raises listing them all, ``skip`` warns."""
        problems = []
        for rows in self.rows.values():
            for row in rows:
                try:
                    path = self.sample_path(row)
                except BadSampleError as err:
                    problems.append(AnnotationProblem(row.source, row.line, str(err)))
                    continue
                if not path.is_file():
                    problems.append(AnnotationProblem(row.source, row.line, f"file not found: {path}"))
                elif path.stat().st_size == 0:
                    problems.append(AnnotationProblem(row.source, row.line, f"file is empty (0 bytes): {path}"))
        if not problems:
            return
        if self.on_bad_sample == "fail":
            raise AnnotationError(
                problems,
                hint="fix or remove these rows, or set data.on_bad_sample=skip to train without them",
            )
        listed = "; ".join(f"{p.source}:{p.line}: {p.message}" for p in problems[:MAX_LISTED_PROBLEMS])
        log.warning("%d sample(s) will be skipped (on_bad_sample=skip): %s", len(problems), listed)

    def texts_for_vocab(self) -> tuple[list[str], list[str]]:
        """Vocabularies from the training annotations alone: no video is decoded."""
        train = self.rows["train"]
        texts = [r.caption for r in train] + [r.question for r in train]
        return texts, [r.answer for r in train if r.answer is not None]

    def collate(self, samples: list[Sample | SkippedSample | None]) -> Batch:
        """Drop skipped samples, collate the rest, and report ``num_skipped`` and ``skipped``."""
        skipped = [s for s in samples if isinstance(s, SkippedSample)]
        good = [s for s in samples if s is not None and not isinstance(s, SkippedSample)]
        if not good:
            names = "; ".join(f"{s.video_id}: {s.reason}" for s in skipped) or f"{len(samples)} sample(s) returned None"
            raise BadSampleError(
                f"every sample of this batch is bad, nothing to train on: {names}. "
                "Run scripts/check_dataset.py to list all bad files."
            )
        batch = super().collate(good)  # type: ignore[arg-type]
        batch["num_skipped"] = len(samples) - len(good)
        batch["skipped"] = [(s.video_id, s.reason) for s in skipped]
        batch["skipped_samples"] = skipped
        return batch

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """In the main process (Lightning calls it for every train/val/test batch): name each skipped file once
        (:class:`SkipLog`) and count it per split and per file."""
        for sample in batch.get("skipped_samples") or ():
            self.skip_log.record(sample)
        return batch

    def teardown(self, stage: str) -> None:
        """At the end of fit/test: one summary of every skipped sample, per split and per file."""
        if self.skip_log.reads:
            log.warning("skipped samples (on_bad_sample=skip):\n%s", self.skip_log.summary())
