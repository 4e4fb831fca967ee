"""Videos as they come from the wild: every frame read is the one shown at the asked time, or a clear error.

Each file is written with PyAV with its frame number stamped into its pixels (``stamped_video``), and every read
is checked frame by frame against a decode of the whole file (FFmpeg's own frames and timestamps).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import hierarchicalvlm.data.video_io as video_io
from hierarchicalvlm.data.annotations import AnnotationError, read_annotations
from hierarchicalvlm.data.stamped_video import read_stamps, stamp_frames, truncate_file, write_stamped_video
from hierarchicalvlm.data.video_io import VideoReadError, decode_frames, probe_video, read_clip, read_clip_with_times
from hierarchicalvlm.data.video_probe import clear_probe_cache
from hierarchicalvlm.data.video_text import VideoClipLoader, VideoTextFolderDataModule

from .helpers import load_script


@pytest.fixture(scope="module")
def wild(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The awkward files of the issue, tiny (32x32, a few dozen frames at 24 fps)."""
    root = tmp_path_factory.mktemp("wild")
    write_stamped_video(root / "short_gop.ts", 72, gop=12, start_frame=34)  # MPEG-TS, non-zero start time
    write_stamped_video(root / "gop_longer_than_file.ts", 72, gop=1000)
    write_stamped_video(root / "audio_longer.mkv", 48, gop=12, audio_seconds=4.0)  # 2 s of video, 4 s of audio
    write_stamped_video(root / "whole.mkv", 96, gop=12)
    truncate_file(root / "whole.mkv", root / "truncated.mkv", keep=0.6)
    write_stamped_video(root / "whole.mp4", 96, gop=12, container_options={"movflags": "+faststart"})
    truncate_file(root / "whole.mp4", root / "truncated_index_first.mp4", keep=0.7)
    write_stamped_video(root / "rotated.mp4", 12, size=(16, 32), rotation=90)
    write_stamped_video(root / "long_gop.mp4", 120, gop=1000)  # 5 s, a single keyframe
    write_stamped_video(root / "piped.webm", 72, codec="libvpx", pipe=True)  # no duration, no index
    return root


def reference(path: Path) -> tuple[np.ndarray, list[int]]:
    """Every frame of ``path`` decoded in order: (timestamps from the first frame, stamped numbers)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pairs = [(float(frame.pts * frame.time_base), read_stamps(frame.to_ndarray(format="rgb24")[None])[0])
                 for frame in container.decode(stream)]
    times = np.array([t for t, _ in pairs])
    return times - times[0], [n for _, n in pairs]


def shown_at(times: np.ndarray, numbers: list[int], t: float) -> int:
    """The number of the frame shown at ``t``: the last one whose timestamp is <= t."""
    return numbers[max(0, int(np.searchsorted(times, t + 1e-9, side="right")) - 1)]


WELL_FORMED = ["short_gop.ts", "gop_longer_than_file.ts", "audio_longer.mkv", "truncated.mkv", "long_gop.mp4",
               "piped.webm"]


@pytest.mark.parametrize("name", WELL_FORMED)
def test_training_reads_return_the_frame_shown_at_each_time(wild, name):
    path = wild / name
    times, numbers = reference(path)
    info = probe_video(path)
    assert info.num_frames == len(numbers)
    if name == "truncated.mkv":  # the cut fell after frame 42 but before the B-frame 41 it was coded before
        assert numbers == sorted(set(numbers)) and len(numbers) < 60 and info.duration == pytest.approx(43 / 24, abs=2e-3)
    else:  # the stamps survive the codec; the video ends after its last frame
        assert numbers == list(range(len(numbers))) and info.duration == pytest.approx(len(numbers) / 24, abs=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(12):  # training-style reads: random jitter in each segment
        clip = read_clip_with_times(path, 4, random=True, generator=generator)
        expected = [shown_at(times, numbers, t) for t in clip.times]
        assert read_stamps(clip.frames) == expected, (name, clip.times)
        assert all(ft <= t + 1e-6 for ft, t in zip(clip.frame_times, clip.times))
    whole = read_stamps(read_clip(path, 8))  # the validation read of the whole video: distinct frames, in order
    assert whole == [shown_at(times, numbers, (i + 0.5) * info.duration / 8) for i in range(8)]
    assert len(set(whole)) == 8


def test_seeks_that_land_late_or_past_the_end_back_off_until_exact(wild, monkeypatch):
    """An imprecise index (MPEG-TS, unindexed WebM) lands late or nowhere: every such seek is repeated further back."""
    path = wild / "short_gop.ts"
    times, numbers = reference(path)
    real_seek = video_io._Decoder.seek
    calls = []

    def imprecise(self, seconds):
        calls.append(seconds)
        wrong = [seconds + 0.6, 10.0]  # first late by more than a GOP, then past the end of the file
        return real_seek(self, wrong[len(calls) - 1] if len(calls) <= len(wrong) else seconds)

    monkeypatch.setattr(video_io._Decoder, "seek", imprecise)
    stats: dict[str, int] = {}
    asked = [1.9, 2.3, 2.8]
    frames = decode_frames(path, asked, stats=stats)
    assert read_stamps(frames) == [shown_at(times, numbers, t) for t in asked]
    assert stats["backoffs"] >= 2 and len(calls) >= 3


def test_seeks_that_land_early_every_time_still_finish(wild, monkeypatch):
    """A demuxer that always lands a GOP early must not make the decoder seek again for the same time forever."""
    path = wild / "short_gop.ts"
    times, numbers = reference(path)
    real_seek = video_io._Decoder.seek
    monkeypatch.setattr(video_io._Decoder, "seek", lambda self, seconds: real_seek(self, max(0.0, seconds - 1.0)))
    stats: dict[str, int] = {}
    asked = [0.1, 1.3, 2.9]
    assert read_stamps(decode_frames(path, asked, stats=stats)) == [shown_at(times, numbers, t) for t in asked]
    assert stats["seeks"] <= 2


def test_a_clip_past_the_last_frame_is_an_error_naming_both_ends(wild):
    path = wild / "audio_longer.mkv"
    info = probe_video(path)
    assert info.duration == pytest.approx(2.0, abs=2e-3) and info.container_duration > 3.9  # Matroska: ms ticks
    with pytest.raises(VideoReadError, match=r"clip end 3\.5 s is past the video's last frame: the video ends at "
                                             r"(1\.999|2\.000) s, the container says 4\.\d+ s") as error:
        read_clip(path, 8, start=1.0, end=3.5)
    assert error.value.kind == "clip past video end"
    clamped = read_clip_with_times(path, 8, start=1.0, end=3.5, clamp_end=True)  # asked for: cut, never repeated
    assert clamped.end == info.duration
    stamps = read_stamps(clamped.frames)
    assert stamps == sorted(set(stamps)) and min(stamps) >= 24
    truncated = probe_video(wild / "truncated.mkv")
    assert truncated.duration < 0.7 * truncated.container_duration
    with pytest.raises(VideoReadError, match=r"the video ends at 1\.79\d s, the container says 4\.000 s"):
        read_clip(wild / "truncated.mkv", 8, start=3.0, end=4.0)


def test_frame_cache_and_feature_extraction_inherit_the_video_end(wild, tmp_path):
    loader = VideoClipLoader(str(wild), 4, (16, 16), 16, "uniform", None, True, tmp_path / "cache")
    rows = read_annotations(_write(tmp_path / "a.csv", "video,start,end\naudio_longer.mkv,1,3.5\naudio_longer.mkv,,\n"))
    with pytest.raises(VideoReadError, match=r"the video ends at (1\.999|2\.000) s"):
        loader.read_cached(rows[0])
    assert not list((tmp_path / "cache").glob("*.npy"))  # nothing cached for a bad clip
    times, numbers_of_video = reference(wild / "audio_longer.mkv")
    end = probe_video(wild / "audio_longer.mkv").duration  # 1.999 s: Matroska's millisecond timestamps
    expected = [shown_at(times, numbers_of_video, (i + 0.5) * end / 4) for i in range(4)]
    assert read_stamps(loader.read_cached(rows[1])) == expected
    # features mode: one row per 1/fps of the *video* (2 s), not of the container (4.2 s); the mean-patch
    # extractor on a 4x4 grid returns the stamp's cells, so each row still says which frame it was made from
    extract = load_script("extract_features")
    ann = _write(tmp_path / "f.csv", "video,caption\naudio_longer.mkv,x\n")
    assert extract.main(["features", "--annotations", str(ann), "--video-root", str(wild), "--out-dir",
                         str(tmp_path / "feats"), "--fps", "4", "--frame-size", "32", "--workers", "0"]) == 0
    features = np.load(tmp_path / "feats" / "audio_longer.npy")
    bits = features[:, :16] > 0.5  # red channel, one value per cell
    numbers = (bits * (1 << np.arange(16))).sum(axis=1).tolist()
    assert numbers == [shown_at(times, numbers_of_video, (k + 0.5) / 4) for k in range(8)]


def test_truncated_file_with_its_index_first_fails_when_read_near_its_end(wild):
    path = wild / "truncated_index_first.mp4"
    info = probe_video(path)
    assert info.damage and "header lists 96 frames" in info.damage
    with pytest.raises(VideoReadError, match="truncated_index_first.mp4"):
        decode_frames(path, [info.duration - 0.01])


def test_rotation_is_applied_as_ffmpeg_displays_it(wild):
    path = wild / "rotated.mp4"
    info = probe_video(path)
    assert info.rotation == 90 and info.display_size() == (32, 16) and info.display_size(rotate=False) == (16, 32)
    shown = read_clip(path, 4)
    assert shown.shape == (4, 32, 16, 3)  # portrait, as displayed
    stored = stamp_frames(12, 16, 32)
    # a 90-degree counter-clockwise turn (FFmpeg: transpose=cclock): the stored left column is the bottom row
    np.testing.assert_allclose(shown[0, -1, :, 0], stored[1, :, 0, 0], atol=40)
    assert read_stamps(np.rot90(shown, -1, axes=(1, 2))) == [1, 4, 7, 10]
    kept = read_clip(path, 4, rotate=False)
    assert kept.shape == (4, 16, 32, 3) and read_stamps(kept) == [1, 4, 7, 10]
    resized = read_clip(path, 2, short_side=8)
    assert resized.shape == (2, 16, 8, 3)


def test_each_file_is_probed_once(wild, monkeypatch):
    clear_probe_cache()
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    path = wild / "piped.webm"
    first = probe_video(path)
    assert first.container_duration is None and first.duration == pytest.approx(3.0, abs=1e-3)  # measured
    assert probe_video(path) is first and len(opened) == 1
    stats: dict[str, int] = {}
    read_clip(path, 4, end=0.5)
    read_clip(path, 4, end=0.5)
    decode_frames(path, [0.4], stats=stats)
    assert len(opened) == 4  # one probe, then one open per read
    assert stats["decoded"] <= 12  # a clip at the start decodes the start, not the whole file
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert probe_video(path) is not first and len(opened) == 5  # a changed file is probed again


def test_check_dataset_catches_every_bad_row_before_training(wild, tmp_path, capsys):
    check = load_script("check_dataset")
    good = _write(tmp_path / "good.csv", "video,caption\nshort_gop.ts,a\naudio_longer.mkv,b\ntruncated.mkv,c\n"
                                         "piped.webm,d\nrotated.mp4,e\nlong_gop.mp4,f\n")
    args = ["--video-root", str(wild), "--split-ratios", "1", "0", "0", "--workers", "1", "--reads", "1"]
    assert check.main(["--annotations", str(good), *args]) == 0  # right frames everywhere: warnings only
    out = capsys.readouterr().out
    assert "no problems" in out and "warning  long keyframe interval: 1 file(s)" in out
    assert "ffmpeg -i " + str(wild / "long_gop.mp4") + " -c:v libx264 -crf 18 -g 24" in out
    assert "audio_longer.mkv: the video ends at 1.999 s, the container says 4." in out
    assert "warning  rotated: 1 file(s)" in out
    bad = _write(tmp_path / "bad.csv", "video,caption,start,end\naudio_longer.mkv,a,1,3.5\ntruncated.mkv,b,3,4\n"
                                       "truncated_index_first.mp4,c,,\nshort_gop.ts,d,1,2\n")
    assert check.main(["--annotations", str(bad), *args]) == 1
    out = capsys.readouterr().out
    assert "bad.csv line 2: " in out and "bad.csv line 3: " in out and "bad.csv line 4: " in out
    assert "bad.csv line 5" not in out
    assert "problem  clip past video end: 2 row(s)" in out and "problem  damaged file: 1 row(s)" in out


def test_build_annotations_finds_transport_streams_by_default(tmp_path, capsys):
    build = load_script("build_annotations")
    for name in ("a.ts", "b.mts", "c.m2ts", "d.mp4"):
        (tmp_path / "clips" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "clips" / name).write_bytes(b"x")
        (tmp_path / "clips" / name).with_suffix(".txt").write_text(f"caption of {name}\n")
    assert build.main(["--video-root", str(tmp_path / "clips"), "--out", str(tmp_path / "ann.csv")]) == 0
    assert sorted(r.video for r in read_annotations(tmp_path / "ann.csv")) == ["a.ts", "b.mts", "c.m2ts", "d.mp4"]
    (tmp_path / "clips" / "a.txt").write_bytes("first\ncaf\xe9\n".encode("latin-1"))  # sidecar not in UTF-8
    with pytest.raises(SystemExit, match=r"a\.txt line 2: not valid UTF-8"):
        build.main(["--video-root", str(tmp_path / "clips"), "--out", str(tmp_path / "ann.csv")])


# --- bad data, named ---------------------------------------------------------------------------
def test_each_skipped_file_is_named_once_and_counted_per_split(media, tmp_path, caplog):
    ann = _write(tmp_path / "bad.csv", "video,caption,split\nvideos/a.mp4,good,train\nvideos/corrupt.mp4,bad,train\n"
                                       "videos/b.mp4,good,val\nvideos/corrupt.mp4,bad,val\n")
    module = VideoTextFolderDataModule(str(ann), str(media), num_frames=2, frame_size=16, batch_size=2,
                                       num_workers=0, on_bad_sample="skip")
    module.setup()
    with caplog.at_level(logging.WARNING, logger="hierarchicalvlm.data.annotations"):
        for _ in range(3):  # three epochs
            for batch in module.train_dataloader():
                module.on_before_batch_transfer(batch, 0)
        for batch in module.val_dataloader():
            module.on_before_batch_transfer(batch, 0)
        module.teardown("fit")
    named = [r.getMessage() for r in caplog.records if "skipping bad sample" in r.getMessage()]
    assert len(named) == 2  # once per split and file, not once per read
    assert f"'videos/corrupt' of the train split ({ann}:3)" in named[0] and "corrupt or unsupported" in named[0]
    assert f"of the val split ({ann}:5)" in named[1]
    assert module.skip_log.counts() == {"train": 3, "val": 1}
    assert "train: 3 skipped read(s) of 1 file(s): videos/corrupt.mp4 x3" in caplog.text


@pytest.mark.parametrize("name, content, line", [
    ("latin1.csv", "video,caption\na.mp4,fine\nb.mp4,caf\xe9 cr\xe8me\n".encode("latin-1"), 3),
    ("latin1.jsonl", '{"video": "a.mp4"}\n{"video": "b.mp4", "caption": "na\xefve"}\n'.encode("latin-1"), 2),
])
def test_annotations_that_are_not_utf8_are_named_with_file_and_line(tmp_path, name, content, line):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AnnotationError, match=rf"{name}: 1 problem\(s\):\n  line {line}: not valid UTF-8 \(byte 0x"):
        read_annotations(path)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
