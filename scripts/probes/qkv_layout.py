"""Probe (issue 14): what the q/k/v split costs around the attention kernels, on one GPU, in one process per length.

Times the layers (fwd + bwd from a fixed upstream gradient, bf16-mixed, 131K tokens, the bench's step) with
``attention.base.split_heads`` (token-major views) and with the einops split it replaced, beside the bench's
FlexAttention baseline, and prints each variant's kernels by device time: where a step's time goes besides the
attention kernel.

    python scripts/probes/qkv_layout.py 16384
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Callable

import torch
from einops import rearrange

from hierarchicalvlm.attention import full
from hierarchicalvlm.attention.sparse import local_global, strided
from hierarchicalvlm.benchmark.cases import (
    Workload,
    allow_recompiles,
    case_catalogue,
    flex_workload,
    mechanism_workload,
)
from hierarchicalvlm.benchmark.measure import time_calls
from hierarchicalvlm.benchmark.settings import BenchSettings

PATCHED_MODULES = (full, local_global, strided)
TOKEN_MAJOR = local_global.split_heads


def einops_split(qkv: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, ...]:
    """The split every layer used until 2026-12-01."""
    return tuple(rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=num_heads))


def use_split(split) -> None:
    for module in PATCHED_MODULES:
        module.split_heads = split


def kernel_table(step, top: int = 14) -> list[tuple[str, float, int]]:
    """(kernel name, ms, calls) of one step, the ``top`` largest by device time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    rows = []
    for event in prof.key_averages():
        ms = getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)) / 1e3
        if ms > 0:
            rows.append((event.key[:90], round(ms, 3), event.count))
    return sorted(rows, key=lambda row: -row[1])[:top]


def probe_settings(length: int, mechanisms: tuple[str, ...], overrides: dict, baselines: bool) -> BenchSettings:
    """The benchmark's GPU cell settings (bf16-mixed, dim 512 = 8 x 64, 131K tokens per step) at one length."""
    allow_recompiles(64)
    return BenchSettings(
        device="cuda", lengths=(length,), dim=512, heads=8, batch_tokens=131072, precision="bf16-mixed",
        warmup=3, repeats=10, mechanisms=mechanisms, overrides=overrides, cores=False, baselines=baselines,
        isolation="none", conf_dir="conf/attention",
    )


def report(build: Callable[[], Workload], **labels) -> None:
    """Print one JSON line: ``labels`` and the built workload's ms (two medians of 10 warm steps) and kernel table,
    or the error that stopped it."""
    work = None
    try:
        work = build()
        for _ in range(3):
            work.step()
        times = [round(statistics.median(time_calls(work.step, "cuda", 10)), 3) for _ in range(2)]
        record = {**labels, "ms": times, "kernels": kernel_table(work.step)}
    except Exception as err:  # noqa: BLE001 - a probe reports every failure and goes on
        record = {**labels, "error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
    print(json.dumps(record), flush=True)
    del work
    torch.cuda.empty_cache()


def main(length: int, mechanisms: list[str]) -> None:
    overrides = {name: {"window_size": 512} for name in ("local", "local_global")}
    overrides["local_global"].update(num_global_tokens=16, global_tokens="first")
    overrides["full"] = {"kernel": "cudnn"}
    overrides["strided"] = {"stride": 4}
    layers = tuple(m for m in mechanisms if not m.startswith("flex"))
    settings = probe_settings(length, layers, overrides, baselines=True)
    catalogue = case_catalogue(settings)
    batch = settings.batch_tokens // length
    for name in mechanisms:
        if name.startswith("flex"):
            report(lambda: flex_workload(catalogue[name], settings, length, batch),
                   length=length, case=name, layout="baseline")
            continue
        for layout, split in (("token_major", TOKEN_MAJOR), ("einops", einops_split)):
            use_split(split)
            report(lambda: mechanism_workload(catalogue[name], settings, length, batch),
                   length=length, case=name, layout=layout)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].split(",") if len(sys.argv) > 2 else
         ["local_global", "flex_local_global", "local", "full", "strided"])
