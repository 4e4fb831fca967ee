"""The longest-video search: exact on a known memory model, and a real CPU search under a host-memory cap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hierarchicalvlm.ablation.max_len import (
    OneStepTrial, Trial, compose_train_config, search_max_frames, search_mechanisms, write_max_len,
)
from hierarchicalvlm.callbacks.memory import free_memory, host_current_rss_bytes

from ..conftest import CONF, ROOT, TINY


def threshold_trial(largest_fitting: int, invalid_below: int = 0, calls: list[int] | None = None):
    """A fake trial: lengths < invalid_below are invalid configs, lengths <= largest_fitting fit."""

    def trial(frames: int) -> Trial:
        if calls is not None:
            calls.append(frames)
        if frames < invalid_below:
            return Trial(frames, "invalid", reason="window too wide")
        if frames <= largest_fitting:
            return Trial(frames, "fits", peak_bytes=frames)
        return Trial(frames, "out_of_memory", peak_bytes=frames, reason="CUDA out of memory")

    return trial


@pytest.mark.parametrize("largest", [8, 9, 100, 777, 1000])
def test_doubling_then_bisection_finds_the_largest_fitting_length(largest: int) -> None:
    calls: list[int] = []
    result = search_max_frames("toy", threshold_trial(largest, calls=calls), start_frames=8, max_frames=4096,
                               tolerance=0.0)
    assert result.max_frames == largest and result.first_failure_frames == largest + 1
    assert result.bounded and result.reason == "CUDA out of memory"
    assert len(calls) <= 2 * (largest.bit_length() + 1)  # logarithmic, not a scan
    assert [t.num_frames for t in result.trials] == calls


def test_tolerance_and_multiples_stop_the_bisection_early() -> None:
    result = search_max_frames("toy", threshold_trial(777), start_frames=8, max_frames=4096, tolerance=0.1,
                               multiple_of=8)
    assert result.max_frames % 8 == 0 and result.max_frames <= 777 < result.first_failure_frames
    assert result.first_failure_frames - result.max_frames <= max(8, int(0.1 * result.max_frames))


def test_short_invalid_lengths_are_skipped_and_edge_cases_reported() -> None:
    skipped = search_max_frames("windowed", threshold_trial(100, invalid_below=20), start_frames=8, max_frames=512,
                                tolerance=0.0)
    assert skipped.max_frames == 100 and [t.outcome for t in skipped.trials][:2] == ["invalid", "invalid"]
    nothing = search_max_frames("huge", threshold_trial(4), start_frames=8, max_frames=512)
    assert nothing.max_frames is None and nothing.first_failure_frames == 8 and len(nothing.trials) == 1
    unbounded = search_max_frames("tiny", threshold_trial(10**6), start_frames=8, max_frames=100)
    assert unbounded.max_frames == 100 and not unbounded.bounded and unbounded.first_failure_frames is None


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"start_frames": 0}, "start_frames"), ({"max_frames": 4}, "max_frames"),
    ({"tolerance": 1.0}, "tolerance"), ({"multiple_of": 3}, "multiple_of"),
])
def test_bad_search_settings_are_rejected(kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        search_max_frames("toy", threshold_trial(100), **{"start_frames": 8, "max_frames": 64, **kwargs})


def test_cpu_search_under_a_host_memory_cap_finds_a_finite_answer(tmp_path: Path) -> None:
    overrides = [*(o for o in TINY if not o.startswith("data.num_frames")), "data.batch_size=2", "data.frame_size=32"]
    cfg = compose_train_config(CONF, [*overrides, "attention=full"], ROOT)
    OneStepTrial(cfg, memory_cap_bytes=None)(8)  # load every lazy import and kernel once
    free_memory()
    cap = host_current_rss_bytes() + 48 * 1024**2  # 48 MiB above what this process holds now

    document = search_mechanisms(
        lambda attention: compose_train_config(CONF, [*overrides, f"attention={attention}"], ROOT),
        ["full"], cap, start_frames=32, max_frames=8192, tolerance=0.5,
    )
    result = document["results"]["full"]
    assert result["bounded"] and result["max_frames"] is not None
    assert 32 <= result["max_frames"] < result["first_failure_frames"] < 8192
    assert result["max_seq_len"] == result["max_frames"] * 16  # 32 px frames, patch 8
    trials = {t["num_frames"]: t for t in result["trials"]}
    assert trials[result["max_frames"]]["outcome"] == "fits" and trials[result["max_frames"]]["peak_bytes"] <= cap
    failure = trials[result["first_failure_frames"]]
    assert failure["outcome"] == "over_cap" and failure["peak_bytes"] > cap and "cap" in result["reason"]
    assert document["device"].startswith("cpu") and "host RSS" in document["limit"]

    write_max_len(document, tmp_path / "max_seq_len.json")
    assert json.loads((tmp_path / "max_seq_len.json").read_text())["results"]["full"]["max_frames"] == result["max_frames"]


def test_a_search_cut_off_keeps_every_trial_it_ran(monkeypatch) -> None:
    """A time limit mid-search (here an interrupt at the fourth trial) keeps the saved answers so far."""
    from hierarchicalvlm.ablation import max_len
    from hierarchicalvlm.ablation.report import longest_video_text

    calls: list[int] = []
    fits_up_to_100 = threshold_trial(100)

    class InterruptedTrial:
        def __init__(self, cfg, memory_cap_bytes) -> None:
            self.device = None

        def __call__(self, frames: int) -> Trial:
            calls.append(frames)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return fits_up_to_100(frames)

    monkeypatch.setattr(max_len, "OneStepTrial", InterruptedTrial)
    saved: list[dict] = []
    cfg = compose_train_config(CONF, list(TINY), ROOT)
    with pytest.raises(KeyboardInterrupt):
        search_mechanisms(lambda attention: cfg, ["full", "strided"], None, progress=saved.append,
                          start_frames=32, max_frames=1024, tolerance=0.0)
    assert calls == [32, 64, 128, 96]  # doubling to the first failure, then the first bisection step
    last = saved[-1]
    assert last["partial"] and list(last["results"]) == ["full"]
    full = last["results"]["full"]
    assert full["unfinished"] and [t["num_frames"] for t in full["trials"]] == [32, 64, 128]
    assert full["max_frames"] == 64 and full["first_failure_frames"] == 128
    assert longest_video_text(full).endswith("(search cut off; may go further)")
