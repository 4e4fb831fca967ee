"""Probe (issue 14): how the local_global layer computes its 16 global query rows at long lengths, on one GPU.

Times the layer (window 512, 16 fixed global tokens, the bench's fwd + bwd step, bf16-mixed, 131K tokens) with the
rows in FlexAttention's block mask, or beside it by fused SDPA (each kernel pinned, and SDPA's own choice) or by
plain products (``small_query_attention``), and prints each variant's kernels by device time.

    python scripts/probes/global_rows.py 65536
"""

from __future__ import annotations

import functools
import json
import statistics
import sys

import torch

from hierarchicalvlm.attention.ops import sdpa as sdpa_module
from hierarchicalvlm.attention.sparse import local_global
from hierarchicalvlm.benchmark.cases import allow_recompiles, case_catalogue, mechanism_workload
from hierarchicalvlm.benchmark.measure import time_calls
from hierarchicalvlm.benchmark.settings import BenchSettings
from qkv_layout import kernel_table

LAYER = local_global.LocalGlobalAttention


def products(global_q, k, v, attn_mask=None, dropout_p=0.0):
    return local_global.small_query_attention(global_q, k, v, attn_mask, dropout_p)


VARIANTS = {  # name: (global rows in the mask, the function the layer's unmasked rows call)
    "rows_in_mask": (True, sdpa_module.sdpa),
    "beside_sdpa_auto": (False, sdpa_module.sdpa),
    "beside_sdpa_flash": (False, functools.partial(sdpa_module.sdpa, kernel="flash")),
    "beside_sdpa_efficient": (False, functools.partial(sdpa_module.sdpa, kernel="efficient")),
    "beside_sdpa_cudnn": (False, functools.partial(sdpa_module.sdpa, kernel="cudnn")),
    "beside_products": (False, products),
}


def main(length: int, names: list[str]) -> None:
    allow_recompiles(64)
    settings = BenchSettings(
        device="cuda", lengths=(length,), dim=512, heads=8, batch_tokens=131072, precision="bf16-mixed",
        warmup=3, repeats=10, mechanisms=("local_global",),
        overrides={"local_global": {"window_size": 512, "num_global_tokens": 16, "global_tokens": "first"}},
        cores=False, baselines=False, isolation="none", conf_dir="conf/attention",
    )
    spec = case_catalogue(settings)["local_global"]
    for name in names:
        rows_in_mask, rows_call = VARIANTS[name]
        LAYER.global_rows_in_mask_max_len = 1 << 30 if rows_in_mask else 0
        local_global.sdpa = rows_call
        try:
            work = mechanism_workload(spec, settings, length, settings.batch_tokens // length)
            for _ in range(3):
                work.step()
            times = [round(statistics.median(time_calls(work.step, "cuda", 10)), 3) for _ in range(2)]
            record = {"length": length, "variant": name, "ms": times, "kernels": kernel_table(work.step)}
        except Exception as err:  # noqa: BLE001 - a probe reports every failure and goes on
            record = {"length": length, "variant": name, "error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
        print(json.dumps(record), flush=True)
        work = None
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].split(",") if len(sys.argv) > 2 else list(VARIANTS))
