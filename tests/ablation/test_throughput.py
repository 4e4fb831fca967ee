"""LongRangeThroughputMonitor: what it measures, what it leaves out, and that it reaches the logs."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.fabric.utilities.throughput import _CUDA_FLOPS
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader

from hierarchicalvlm.callbacks import LongRangeThroughputMonitor, device_peak_flops
from hierarchicalvlm.callbacks import throughput as throughput_module
from hierarchicalvlm.run.pipeline import run

from .conftest import in_process_config

BATCH, FRAMES, TOKENS_PER_FRAME, IN, HIDDEN, OUT = 4, 6, 5, 16, 32, 8
STEP_SECONDS = 0.02


class TimedModule(L.LightningModule):
    """Two linear layers; every training step sleeps STEP_SECONDS, warm-up steps and validation much longer,
    and one step may pretend torch.compile built a graph."""

    def __init__(self, slow_steps: int = 0, compile_at_step: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(IN, HIDDEN), nn.Linear(HIDDEN, OUT))
        self.slow_steps = slow_steps
        self.compile_at_step = compile_at_step

    def long_range_tokens(self, batch: dict) -> int:
        return int(batch["frames"].shape[0] * batch["frames"].shape[1] * TOKENS_PER_FRAME)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net(batch["x"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        step = self.global_step
        time.sleep(0.3 if step < self.slow_steps or step == self.compile_at_step else STEP_SECONDS)
        if step == self.compile_at_step:
            from torch._dynamo.utils import counters

            counters["stats"]["unique_graphs"] += 1
        return self(batch).pow(2).mean()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        time.sleep(0.3)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def batches(n: int) -> DataLoader:
    items = [{"x": torch.randn(IN), "frames": torch.zeros(FRAMES, 1)} for _ in range(n * BATCH)]
    return DataLoader(items, batch_size=BATCH)


def fit(tmp_path: Path, module: TimedModule, monitor: LongRangeThroughputMonitor, train_batches: int,
        val_every: int | None = None) -> Path:
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=CSVLogger(tmp_path, name="csv", version=""), callbacks=[monitor],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        val_check_interval=val_every, limit_val_batches=1 if val_every else 0, num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=batches(train_batches),
                val_dataloaders=batches(1) if val_every else None)
    return tmp_path / "csv" / "metrics.csv"


def test_flops_per_batch_is_forward_plus_backward_of_the_model(tmp_path: Path) -> None:
    module = TimedModule()
    fit(tmp_path, module, LongRangeThroughputMonitor(log_every_n_steps=2, warmup_steps=1), train_batches=3)
    forward = 2 * BATCH * (IN * HIDDEN + HIDDEN * OUT)
    # backward: weight gradients of both layers + the input gradient of the second (the data needs none)
    backward = 2 * BATCH * (IN * HIDDEN + HIDDEN * OUT) + 2 * BATCH * HIDDEN * OUT
    assert module.flops_per_batch == forward + backward


def test_warmup_validation_and_compile_steps_are_left_out(tmp_path: Path) -> None:
    monitor = LongRangeThroughputMonitor(log_every_n_steps=2, warmup_steps=2)
    module = TimedModule(slow_steps=2, compile_at_step=5)
    fit(tmp_path, module, monitor, train_batches=10, val_every=4)
    summary = monitor.summary
    assert summary["excluded_warmup_steps"] == 2 and summary["excluded_compile_steps"] == 1
    assert summary["steady_steps"] == 10 - 2 - 1
    # every slow part (0.3 s) is excluded: steady steps take ~STEP_SECONDS (+ loader/optimizer overhead)
    assert STEP_SECONDS <= summary["step_time_s_median"] <= summary["step_time_s_max"] < 0.3
    tokens_per_step = BATCH * FRAMES * TOKENS_PER_FRAME
    assert summary["tokens_per_sec_median"] == pytest.approx(tokens_per_step / summary["step_time_s_median"], rel=0.3)
    assert summary["samples_per_sec_mean"] * summary["step_time_s_mean"] == pytest.approx(BATCH)
    assert summary["mfu_median"] is None and summary["available_flops"] is None  # CPU: no known peak


def test_logged_rates_are_consistent_and_reach_the_csv(tmp_path: Path) -> None:
    monitor = LongRangeThroughputMonitor(log_every_n_steps=2, warmup_steps=1)
    metrics_csv = fit(tmp_path, TimedModule(), monitor, train_batches=7)
    rows = [r for r in csv.DictReader(open(metrics_csv)) if r.get("throughput/tokens_per_sec")]
    assert len(rows) == (7 - 1) // 2  # one row per 2 steady-state batches
    for row in rows:
        tokens, samples = float(row["throughput/tokens_per_sec"]), float(row["throughput/samples_per_sec"])
        assert tokens / samples == pytest.approx(FRAMES * TOKENS_PER_FRAME)
        assert samples * float(row["throughput/step_time_s"]) == pytest.approx(BATCH)
        assert float(row["throughput/flops_per_sec"]) > 0 and float(row["memory/host_peak_rss_gib"]) > 0
        assert "throughput/mfu" not in row or row["throughput/mfu"] == ""
    summary_rows = [r for r in csv.DictReader(open(metrics_csv)) if r.get("summary/tokens_per_sec_median")]
    assert len(summary_rows) == 1
    assert float(summary_rows[0]["summary/tokens_per_sec_median"]) == pytest.approx(monitor.summary["tokens_per_sec_median"])
    assert float(summary_rows[0]["summary/host_peak_rss_gib"]) > 0 and "summary/device_peak_gib" not in summary_rows[0]


def test_mfu_is_reported_where_the_peak_is_known(tmp_path: Path, monkeypatch) -> None:
    peak = 1e9
    monkeypatch.setattr(throughput_module, "device_peak_flops", lambda device, dtype: peak)
    monitor = LongRangeThroughputMonitor(log_every_n_steps=2, warmup_steps=1)
    metrics_csv = fit(tmp_path, TimedModule(), monitor, train_batches=5)
    summary = monitor.summary
    assert summary["mfu_median"] == pytest.approx(summary["flops_per_sec_median"] / peak)
    rows = [r for r in csv.DictReader(open(metrics_csv)) if r.get("throughput/mfu")]
    assert rows and all(float(r["throughput/mfu"]) == pytest.approx(float(r["throughput/flops_per_sec"]) / peak)
                        for r in rows)


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA H100 80GB HBM3", _CUDA_FLOPS["h100 sxm"][torch.bfloat16]),
    ("NVIDIA H200", _CUDA_FLOPS["h100 sxm"][torch.bfloat16]),  # same tensor cores, dense figure
    ("NVIDIA H200 NVL", None),
    ("Some Future GPU", None),
])
def test_device_peak_flops_knows_h100_and_h200_only_from_lightnings_table(name, expected, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert device_peak_flops(torch.device("cuda", 0), torch.bfloat16) == expected
    assert device_peak_flops(torch.device("cpu"), torch.bfloat16) is None


@pytest.mark.parametrize("kwargs", [{"log_every_n_steps": 0}, {"warmup_steps": 0}, {"warmup_steps": 1.5}])
def test_bad_settings_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LongRangeThroughputMonitor(**kwargs)


def test_the_training_pipeline_logs_throughput_through_the_long_range_level(tmp_path: Path) -> None:
    cfg = in_process_config(tmp_path, "debug=limit", "trainer.max_epochs=1", "trainer.limit_train_batches=5", "data.num_train=48",
                            "logger=csv", "test=false", "callbacks.throughput.warmup_steps=1",
                            "callbacks.throughput.log_every_n_steps=2")
    run(cfg)
    rows = [r for r in csv.DictReader(open(tmp_path / "csv" / "metrics.csv")) if r.get("throughput/tokens_per_sec")]
    assert len(rows) == 2
    tokens_per_sample = 8 * (16 // 8) ** 2  # TINY: 8 frames of 16 px, patch 8
    for row in rows:
        assert float(row["throughput/tokens_per_sec"]) / float(row["throughput/samples_per_sec"]) == pytest.approx(
            tokens_per_sample)
