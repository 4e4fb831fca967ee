#!/usr/bin/env python
"""Build an annotation file (CSV or JSONL) for ``data=video_text`` / ``data=features``.

Two sources of captions:

* caption files next to the videos: ``clips/dog.mp4`` + ``clips/dog.txt``; every non-empty
  line of the ``.txt`` becomes one sample (one caption) of that video;
* a captions CSV (``--captions-csv``) with a video column and a caption column (names set by
  ``--video-column``/``--caption-column``; ``question``, ``answer``, ``start``, ``end``, ``split``
  and ``id`` columns are copied when present).

The output is validated by reading it back, so what this script writes always loads.
``--split 0.8 0.1 0.1`` writes a ``split`` column (hash split by video) that freezes the split.

Examples::

    python scripts/build_annotations.py --video-root data/clips --out data/ann.csv --split 0.8 0.1 0.1
    python scripts/build_annotations.py --video-root data/clips --captions-csv caps.csv \\
        --video-column filename --caption-column sentence --out data/ann.jsonl
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any, Optional

from hierarchicalvlm.data.annotations import COLUMNS, hash_split, read_annotations, read_utf8, write_annotations

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts")


def read_text_file(path: Path) -> str:
    """The text of a UTF-8 file, or exit naming the file and every line that is not UTF-8."""
    text, problems = read_utf8(path)
    if text is None:
        raise SystemExit("\n".join(f"{path} line {line}: {problem}" for line, problem in problems))
    return text


def rows_from_caption_files(root: Path, extensions: tuple[str, ...], keep_uncaptioned: bool) -> list[dict[str, Any]]:
    """One row per caption line of each video's sidecar ``.txt`` file."""
    rows: list[dict[str, Any]] = []
    uncaptioned = []
    videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    for video in videos:
        relative = video.relative_to(root).as_posix()
        sidecar = video.with_suffix(".txt")
        captions = []
        if sidecar.is_file():
            captions = [line.strip() for line in read_text_file(sidecar).splitlines() if line.strip()]
        if not captions:
            uncaptioned.append(relative)
            if keep_uncaptioned:
                rows.append({"video": relative, "caption": ""})
        rows += [{"video": relative, "caption": caption} for caption in captions]
    if not videos:
        print(f"no videos with suffix {', '.join(extensions)} under {root}", file=sys.stderr)
    if uncaptioned:
        action = "kept with an empty caption" if keep_uncaptioned else "left out (--keep-uncaptioned keeps them)"
        print(f"{len(uncaptioned)} video(s) without a caption file, {action}: {', '.join(uncaptioned[:20])}",
              file=sys.stderr)
    return rows


def rows_from_captions_csv(path: Path, video_column: str, caption_column: str) -> list[dict[str, Any]]:
    """Rows of an external captions CSV, renamed to the annotation columns."""
    with io.StringIO(read_text_file(path), newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        missing = [c for c in (video_column, caption_column) if c not in fields]
        if missing:
            raise SystemExit(f"{path}: missing column(s) {missing}; its columns are {fields} "
                             "(choose them with --video-column/--caption-column)")
        rows = []
        for record in reader:
            row = {"video": (record[video_column] or "").strip(), "caption": (record[caption_column] or "").strip()}
            for column in COLUMNS:
                if column not in row and column in fields and (record[column] or "").strip():
                    row[column] = record[column].strip()
            rows.append(row)
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video-root", type=Path, required=True, help="folder holding the videos")
    parser.add_argument("--out", type=Path, required=True, help="annotation file to write (.csv, .tsv or .jsonl)")
    parser.add_argument("--captions-csv", type=Path, help="captions CSV instead of .txt files next to the videos")
    parser.add_argument("--video-column", default="video", help="video column of --captions-csv")
    parser.add_argument("--caption-column", default="caption", help="caption column of --captions-csv")
    parser.add_argument("--extensions", nargs="+", default=list(VIDEO_EXTENSIONS), help="video suffixes to scan")
    parser.add_argument("--keep-uncaptioned", action="store_true", help="keep videos without captions (empty caption)")
    parser.add_argument("--drop-missing", action="store_true", help="drop captions-CSV rows whose video is missing")
    parser.add_argument("--split", nargs=3, type=float, metavar=("TRAIN", "VAL", "TEST"),
                        help="write a split column: hash split by video with these ratios")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hash split")
    args = parser.parse_args(argv)

    root = args.video_root.expanduser()
    if not root.is_dir():
        print(f"--video-root {root} is not a directory", file=sys.stderr)
        return 1
    if args.captions_csv:
        rows = rows_from_captions_csv(args.captions_csv, args.video_column, args.caption_column)
        missing = [r["video"] for r in rows if not (root / r["video"]).is_file()]
        if missing:
            print(f"{len(missing)} video(s) of {args.captions_csv} not found under {root}: {', '.join(missing[:20])}",
                  file=sys.stderr)
            if not args.drop_missing:
                print("fix the paths, or pass --drop-missing to leave those rows out", file=sys.stderr)
                return 1
            rows = [r for r in rows if r["video"] not in set(missing)]
    else:
        extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in args.extensions)
        rows = rows_from_caption_files(root, extensions, args.keep_uncaptioned)
    if not rows:
        print("no samples to write", file=sys.stderr)
        return 1

    write_annotations(rows, args.out)
    annotations = read_annotations(args.out)  # validates what was written
    if args.split:
        by_split = hash_split(annotations, args.split, args.seed)
        split_of = {r.line: split for split, split_rows in by_split.items() for r in split_rows}
        lines = [r.line for r in annotations]  # rows are read back in the order they were written
        for row, line in zip(rows, lines):
            row["split"] = split_of[line]
        write_annotations(rows, args.out)
        annotations = read_annotations(args.out)
    counts = {s: sum(r.split == s for r in annotations) for s in ("train", "val", "test")}
    split_text = f" ({', '.join(f'{k} {v}' for k, v in counts.items())})" if args.split else ""
    print(f"wrote {len(annotations)} samples of {len({r.video for r in annotations})} videos to {args.out}{split_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
