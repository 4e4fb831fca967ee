#!/usr/bin/env python
"""Measure the card's ceilings: an 8192³ bf16 matmul (TFLOP/s) and a 4 GiB device-to-device copy (GB/s).

    python scripts/gpu_ceilings.py --out docs/benchmarks/h200/ceilings.json     # on a GPU
    python scripts/gpu_ceilings.py --device cpu                                  # fp32 matmul 1024³, 0.25 GiB copy
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from hierarchicalvlm.benchmark.ceilings import DEFAULTS, measure_ceilings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=tuple(DEFAULTS), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--matmul-size", type=int, help="square matmul side (default: 8192 on cuda, 1024 on cpu)")
    parser.add_argument("--copy-gib", type=float, help="GiB copied (default: 4 on cuda, 0.25 on cpu)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible; use --device cpu")
    defaults = DEFAULTS[args.device]
    result = measure_ceilings(args.device, args.matmul_size or defaults["matmul_size"],
                              args.copy_gib or defaults["copy_gib"], args.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
