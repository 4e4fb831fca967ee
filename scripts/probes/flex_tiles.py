"""Probe (issue 14): the local_global layer's static-mask FlexAttention at several mask block sizes and kernel tiles,
beside the bench's FlexAttention baseline with the same mask, in one process (fwd + bwd, bf16-mixed, 131K tokens).

    python scripts/probes/flex_tiles.py 16384 4096
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from hierarchicalvlm.attention.ops import flex
from hierarchicalvlm.benchmark.cases import allow_recompiles, case_catalogue, flex_workload, mechanism_workload
from hierarchicalvlm.benchmark.measure import time_calls
from hierarchicalvlm.benchmark.settings import BenchSettings

VARIANTS = {
    "default": flex.StaticMaskTiles(),
    "bwd64x64-w4": flex.StaticMaskTiles((128, 128), flex.BACKWARD_64_TILES),
    "mask64-all64": flex.StaticMaskTiles((64, 64), flex.BACKWARD_64_TILES + (("fwd_BLOCK_M", 64), ("fwd_BLOCK_N", 64))),
    "fwd128x64": flex.StaticMaskTiles((128, 128), (("fwd_BLOCK_M", 128), ("fwd_BLOCK_N", 64))),
    "bwd-w4": flex.StaticMaskTiles((128, 128), (("bwd_num_warps", 4),)),
}


def main(lengths: list[int]) -> None:
    allow_recompiles(256)
    settings = BenchSettings(
        device="cuda", lengths=tuple(lengths), dim=512, heads=8, batch_tokens=131072, precision="bf16-mixed",
        warmup=3, repeats=10, mechanisms=("local_global",),
        overrides={"local_global": {"window_size": 512, "num_global_tokens": 16, "global_tokens": "first"}},
        cores=False, baselines=True, isolation="none", conf_dir="conf/attention",
    )
    catalogue = case_catalogue(settings)
    for length in lengths:
        batch = settings.batch_tokens // length
        rows = {}
        for name, tiles in [("flex_baseline", None), *VARIANTS.items()]:
            begin = time.time()
            try:
                if tiles is None:
                    work = flex_workload(catalogue["flex_local_global"], settings, length, batch)
                else:
                    flex.STATIC_MASK_TILES = ((0, tiles),)
                    work = mechanism_workload(catalogue["local_global"], settings, length, batch)
                for _ in range(3):
                    work.step()
                times = [statistics.median(time_calls(work.step, "cuda", 10)) for _ in range(2)]
                rows[name] = {"ms": [round(t, 3) for t in times], "wall_s": round(time.time() - begin, 1)}
            except Exception as err:  # noqa: BLE001 - a probe reports every failure and goes on
                rows[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
            print(json.dumps({"length": length, "variant": name, **rows[name]}), flush=True)
            del work
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [16384])
