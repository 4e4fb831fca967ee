"""Probe (issue 14): how much of a layer's timed step is host time, on one GPU.

For each layer (the bench's cell: bf16-mixed, fwd + bwd from a fixed upstream gradient, 131K tokens) it prints the
median step time with a synchronisation after every step (the tables' method until 2026-12-01) and with the steps
queued back to back (the method since), and the host's own time per queued step (Python, dispatch, launches;
measured before the final synchronisation). Where the host time nears the device's, the synchronised figure
counts it; queued, it overlaps the previous step's kernels.

    python scripts/probes/step_timing.py 16384 performer,full,strided
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from hierarchicalvlm.benchmark.cases import case_catalogue, mechanism_workload
from hierarchicalvlm.benchmark.measure import time_calls
from qkv_layout import probe_settings

OVERRIDES = {
    "full": {"kernel": "cudnn"},
    "local": {"window_size": 512},
    "local_global": {"window_size": 512, "num_global_tokens": 16, "global_tokens": "first"},
    "performer": {"num_features": 256},
    "strided": {"stride": 4},
}


def host_ms_per_step(step, steps: int = 10) -> float:
    """Host time per step with the steps queued (the device is still busy with them when this returns)."""
    torch.cuda.synchronize()
    begin = time.perf_counter()
    for _ in range(steps):
        step()
    host = (time.perf_counter() - begin) * 1e3 / steps
    torch.cuda.synchronize()
    return host


def main(length: int, mechanisms: list[str]) -> None:
    settings = probe_settings(length, tuple(mechanisms), OVERRIDES, baselines=False)
    catalogue = case_catalogue(settings)
    for name in mechanisms:
        try:
            work = mechanism_workload(catalogue[name], settings, length, settings.batch_tokens // length)
            for _ in range(3):
                work.step()
            record = {"length": length, "layer": name}
            for round_ in range(2):
                record[f"synchronized_ms_{round_}"] = round(statistics.median(time_calls(work.step, "cuda", 10, True)), 3)
                record[f"queued_ms_{round_}"] = round(statistics.median(time_calls(work.step, "cuda", 10)), 3)
            record["host_ms_per_step"] = round(host_ms_per_step(work.step), 3)
            del work
        except Exception as err:  # noqa: BLE001 - a probe reports every failure and goes on
            record = {"length": length, "layer": name, "error": f"{type(err).__name__}: {str(err)[:300]}"}
        print(json.dumps(record), flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].split(","))
