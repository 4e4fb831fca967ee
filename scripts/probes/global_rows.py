"""Probe (issue 14): how the local_global layer computes its 16 global query rows at long lengths, on one GPU.

Times the layer (window 512, 16 fixed global tokens, the bench's fwd + bwd step, bf16-mixed, 131K tokens) with the
rows in FlexAttention's block mask, or beside it by fused SDPA (each kernel pinned, and SDPA's own choice) or by
plain products (``small_query_attention``), and prints each variant's kernels by device time.

    python scripts/probes/global_rows.py 65536
"""

from __future__ import annotations

import functools
import sys

from hierarchicalvlm.attention.ops import sdpa as sdpa_module
from hierarchicalvlm.attention.sparse import local_global
from hierarchicalvlm.benchmark.cases import case_catalogue, mechanism_workload
from qkv_layout import probe_settings, report

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
    overrides = {"local_global": {"window_size": 512, "num_global_tokens": 16, "global_tokens": "first"}}
    settings = probe_settings(length, ("local_global",), overrides, baselines=False)
    spec = case_catalogue(settings)["local_global"]
    for name in names:
        rows_in_mask, rows_call = VARIANTS[name]
        LAYER.global_rows_in_mask_max_len = 1 << 30 if rows_in_mask else 0
        local_global.sdpa = rows_call
        report(lambda: mechanism_workload(spec, settings, length, settings.batch_tokens // length),
               length=length, variant=name)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].split(",") if len(sys.argv) > 2 else list(VARIANTS))
