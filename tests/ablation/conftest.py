"""Helpers of the ablation tests: tiny sweeps through the real ``train.py -m``, and in-process configs."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig, open_dict

from ..conftest import ROOT, TINY, compose_config

TEST_CONF = Path(__file__).resolve().parent / "conf"  # the test-only attention "exploding"
SEARCHPATH = f"hydra.searchpath=[file://{TEST_CONF}]"

# TINY minus the swept key, with a few batches per epoch and a 1-batch throughput warm-up
FIXED = [
    *(o for o in TINY if not o.startswith("data.num_frames=")),
    "debug=limit",
    "logger=csv",
    "callbacks.throughput.warmup_steps=1",
    "callbacks.throughput.log_every_n_steps=1",
]


def stable_folders(fixed: list[str]) -> list[str]:
    """Overrides that give each job the folder ``<swept key=value,...>`` (fixed keys left out of its name)."""
    keys = sorted({o.split("=", 1)[0].lstrip("+~") for o in fixed})
    return ["hydra.sweep.subdir=${hydra.job.override_dirname}",
            f"hydra.job.config.override_dirname.exclude_keys=[{','.join(keys)}]"]


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore", **extra}


def train_py(args: list[str], timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """``python train.py <args>`` in a subprocess; unlike tests.conftest.run_train_py, ``env`` may set WANDB_MODE."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=_env(env),
                          capture_output=True, text=True, timeout=timeout)


def start_train_py(args: list[str], log_file: Path) -> subprocess.Popen:
    """Start ``python train.py <args>`` in its own process group (so a test can kill it like a crash)."""
    out = open(log_file, "w")
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=_env({}),
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def in_process_config(tmp_path: Path, *overrides: str) -> DictConfig:
    """A composed job config for in-process runs (the Hydra node dropped, as inside a real job)."""
    cfg = compose_config([*TINY, *overrides], tmp_path)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def wandb_records(run_file: Path) -> Iterator[object]:
    """The protobuf records of an offline wandb run file (``run-<id>.wandb``, LevelDB log format)."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    block, header = 32768, 7
    position, pending = 7, b""  # the file starts with a 7-byte ":W&B" header
    while position + header <= len(data):
        left_in_block = block - position % block
        if left_in_block < header:
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position:position + header])
        if kind == 0:  # zero padding up to the end of the block
            position += left_in_block
            continue
        chunk = data[position + header:position + header + length]
        position += header + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""
