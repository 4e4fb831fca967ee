"""Annotation files: parsing, every malformed-line message (with its line number), splits, and build_annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hierarchicalvlm.data.annotations import (
    AnnotationError,
    hash_split,
    load_split_annotations,
    read_annotations,
    write_annotations,
)

from .helpers import load_script


# --- parsing good files -------------------------------------------------------------------------
def test_csv_parses_every_column(write_file):
    path = write_file(
        "a.csv",
        'video,caption,question,answer,start,end,split,id\n'
        'v/a.mp4,"a dog, running",what runs?,dog,1.5,3,train,\n'
        '/abs/b.mp4,,,,,,val,my-id\n',
    )
    first, second = read_annotations(path)
    assert (first.video, first.caption, first.question, first.answer) == ("v/a.mp4", "a dog, running", "what runs?", "dog")
    assert (first.start, first.end, first.split, first.line) == (1.5, 3.0, "train", 2)
    assert first.video_id == "v/a#1.5-3"
    assert second.answer is None and second.caption == "" and second.video_id == "my-id"
    assert second.resolve(None) == Path("/abs/b.mp4")
    assert first.resolve("/root") == Path("/root/v/a.mp4")
    with pytest.raises(ValueError, match="relative but no root directory"):
        first.resolve(None)


def test_jsonl_and_tsv_parse(write_file):
    jsonl = write_file(
        "a.jsonl",
        json.dumps({"video": "a.mp4", "caption": "x", "question": "how many?", "answer": 3}) + "\n\n"
        + json.dumps({"video": "b.mp4", "caption": None, "start": "2", "end": 4.0}) + "\n",
    )
    a, b = read_annotations(jsonl)
    assert a.answer == "3" and a.line == 1
    assert (b.start, b.end, b.line, b.caption) == (2.0, 4.0, 3, "")
    tsv = write_file("a.tsv", "video\tcaption\na.mp4\thello, world\n")
    assert read_annotations(tsv)[0].caption == "hello, world"


def test_write_annotations_round_trips(tmp_path):
    rows = [{"video": "a.mp4", "caption": 'say "hi", twice', "start": 1.0, "end": 2.5, "split": "val"},
            {"video": "b.mp4", "caption": "multi\nline"}]
    for suffix in (".csv", ".jsonl"):
        back = read_annotations(write_annotations(rows, tmp_path / f"out{suffix}"))
        assert [(r.video, r.caption, r.start, r.end) for r in back] == [
            ("a.mp4", 'say "hi", twice', 1.0, 2.5), ("b.mp4", "multi\nline", None, None)]
    with pytest.raises(ValueError, match="unknown keys"):
        write_annotations([{"video": "a", "title": "x"}], tmp_path / "x.csv")


# --- malformed files: the message names the line and the problem ---------------------------------
@pytest.mark.parametrize(
    "text, line, problem",
    [
        ("caption\nhello\n", 1, "missing column 'video'"),
        ("video,captoin\na.mp4,x\n", 1, "unknown column 'captoin' (did you mean 'caption'?)"),
        ("video,caption\na.mp4,x\n,y\n", 3, "empty video path"),
        ("video,start,end\na.mp4,0,1\nb.mp4,abc,2\n", 3, "start must be a number of seconds, got 'abc'"),
        ("video,start,end\na.mp4,-1,2\n", 2, "start must be a finite number of seconds >= 0"),
        ("video,start,end\na.mp4,nan,2\n", 2, "start must be a finite number"),
        ("video,start,end\na.mp4,1,2\nb.mp4,3,3\n", 3, "end (3 s) must be greater than start (3 s)"),
        ("video,question,answer\na.mp4,,yes\n", 2, "answer given without a question"),
        ("video,split\na.mp4,training\n", 2, "split must be one of train, val, test, got 'training'"),
        ("video,caption\na.mp4,x,extra\n", 2, "expected 2 fields (video, caption), got 3"),
        ('video,caption\n"a.mp4","multi\nline"\nb.mp4,x,y\n', 4, "expected 2 fields"),
        ("", 1, "the file is empty"),
        ("video,caption\n", 0, "the file has no samples"),
        ("video,caption,caption\na,b,c\n", 1, "column 'caption' appears twice"),
    ],
)
def test_malformed_csv_names_line_and_problem(write_file, text, line, problem):
    path = write_file("bad.csv", text)
    with pytest.raises(AnnotationError) as info:
        read_annotations(path)
    message = str(info.value)
    assert str(path) in message and problem in message
    if line:
        assert f"line {line}: " in message
    assert any(p.line == line for p in info.value.problems)


@pytest.mark.parametrize(
    "lines, line, problem",
    [
        (['{"video": "a.mp4"}', '{"video": "b.mp4",}'], 2, "invalid JSON"),
        (['["a.mp4"]'], 1, "expected a JSON object, got list"),
        (['{"caption": "x"}'], 1, "missing key 'video'"),
        (['{"video": "a.mp4", "lenght": 3}'], 1, "unknown column 'lenght'"),
        (['{"video": "a.mp4", "caption": ["x"]}'], 1, "caption must be text, got list"),
        (['{"video": "a.mp4", "start": true}'], 1, "start must be a number of seconds"),
        (['{"video": "a.mp4"}', '', '{"video": ""}'], 3, "empty video path"),
    ],
)
def test_malformed_jsonl_names_line_and_problem(write_file, lines, line, problem):
    path = write_file("bad.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(AnnotationError) as info:
        read_annotations(path)
    assert f"line {line}: " in str(info.value) and problem in str(info.value)


def test_empty_caption_rejected_only_when_required(write_file):
    path = write_file("a.csv", "video,caption\na.mp4,hello\nb.mp4,\n")
    assert len(read_annotations(path)) == 2
    with pytest.raises(AnnotationError, match=r"line 3: empty caption"):
        read_annotations(path, require_captions=True)


def test_every_problem_of_a_file_is_reported_at_once(write_file):
    path = write_file("bad.csv", "video,start,end\n,0,1\nb.mp4,x,1\nc.mp4,2,1\nd.mp4,0,1\n")
    with pytest.raises(AnnotationError) as info:
        read_annotations(path)
    assert [p.line for p in info.value.problems] == [2, 3, 4]


def test_bad_file_names(tmp_path, write_file):
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        read_annotations(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"must end in \.csv, \.tsv or \.jsonl"):
        read_annotations(write_file("a.txt", "video\na\n"))


# --- splits -------------------------------------------------------------------------------------
def test_split_column(good_csv):
    splits = load_split_annotations(good_csv)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert splits["val"][0].video == "videos/c.webm"


def test_split_column_must_be_on_every_row(write_file):
    path = write_file("a.jsonl", '{"video": "a", "split": "train"}\n{"video": "b"}\n')
    with pytest.raises(AnnotationError, match="line 2: empty split"):
        load_split_annotations(path)


def test_separate_split_files(write_file):
    train = write_file("train.csv", "video\na.mp4\nb.mp4\n")
    val = write_file("val.csv", "video,split\nc.mp4,val\n")
    splits = load_split_annotations(train_annotations=train, val_annotations=val)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [2, 1, 0]
    wrong = write_file("val2.csv", "video,split\nc.mp4,train\n")
    with pytest.raises(AnnotationError, match="line 2: split column says 'train' but the file is the val file"):
        load_split_annotations(train_annotations=train, val_annotations=wrong)
    with pytest.raises(ValueError, match="not both"):
        load_split_annotations(train, train_annotations=train)
    with pytest.raises(ValueError, match="no annotations"):
        load_split_annotations()


def test_hash_split_is_deterministic_grouped_by_video_and_fills_every_split(write_file):
    lines = ["video,start,end"] + [f"v{i}.mp4,{j},{j + 1}" for i in range(20) for j in range(3)]
    path = write_file("a.csv", "\n".join(lines) + "\n")
    first = load_split_annotations(path, split_ratios=(0.6, 0.2, 0.2), split_seed=1)
    again = load_split_annotations(path, split_ratios=(0.6, 0.2, 0.2), split_seed=1)
    assert {s: [r.line for r in rows] for s, rows in first.items()} == {s: [r.line for r in rows] for s, rows in again.items()}
    videos = {s: {r.video for r in rows} for s, rows in first.items()}
    assert [len(videos[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    assert not (videos["train"] & videos["val"]) and not (videos["train"] & videos["test"])  # clips stay together
    other = load_split_annotations(path, split_ratios=(0.6, 0.2, 0.2), split_seed=2)
    assert {r.video for r in other["val"]} != videos["val"]


def test_hash_split_small_and_invalid(write_file):
    rows = read_annotations(write_file("a.csv", "video\na\nb\nc\n"))
    assert [len(v) for v in hash_split(rows, (0.8, 0.1, 0.1)).values()] == [1, 1, 1]
    one = read_annotations(write_file("b.csv", "video\na\n"))
    assert [len(v) for v in hash_split(one, (0.8, 0.1, 0.1)).values()] == [1, 0, 0]
    with pytest.raises(ValueError, match="split_ratios must be three numbers"):
        hash_split(rows, (0.5, 0.5))
    with pytest.raises(ValueError, match="train split a positive share"):
        hash_split(rows, (0, 0.5, 0.5))


# --- scripts/build_annotations.py ---------------------------------------------------------------
def test_build_annotations_from_caption_txt_files(media, tmp_path, capsys):
    build = load_script("build_annotations")
    root = tmp_path / "vids"
    (root / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.mp4", "c.mp4"):
        (root / name).write_bytes((media / "videos" / "a.mp4").read_bytes())
    (root / "a.txt").write_text("first caption\n\nsecond caption\n")
    (root / "sub" / "b.txt").write_text("bee caption\n")
    out = tmp_path / "ann.jsonl"
    assert build.main(["--video-root", str(root), "--out", str(out), "--split", "0.5", "0.5", "0"]) == 0
    rows = read_annotations(out, require_captions=True)
    assert sorted((r.video, r.caption) for r in rows) == [
        ("a.mp4", "first caption"), ("a.mp4", "second caption"), ("sub/b.mp4", "bee caption")]
    assert {r.split for r in rows} == {"train", "val"}
    assert len({r.split for r in rows if r.video == "a.mp4"}) == 1
    assert "c.mp4" in capsys.readouterr().err  # reported as uncaptioned


def test_build_annotations_from_captions_csv(media, tmp_path, write_file):
    build = load_script("build_annotations")
    root = tmp_path / "vids"
    root.mkdir()
    (root / "x.mp4").write_bytes(b"\0")
    captions = write_file("caps.csv", "video,caption,start,end\nx.mp4,hello,0,1\nmissing.mp4,gone,,\n")
    out = tmp_path / "ann.csv"
    assert build.main(["--video-root", str(root), "--captions-csv", str(captions), "--out", str(out)]) == 1
    assert build.main(["--video-root", str(root), "--captions-csv", str(captions), "--out", str(out),
                       "--drop-missing"]) == 0
    (row,) = read_annotations(out)
    assert (row.video, row.caption, row.start, row.end) == ("x.mp4", "hello", 0.0, 1.0)
