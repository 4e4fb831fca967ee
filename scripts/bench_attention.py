#!/usr/bin/env python
"""Attention benchmark: forward+backward time and peak memory of every mechanism vs full attention, over length.

The logic lives in :mod:`hierarchicalvlm.benchmark`; this is its command line.

Examples::

    python scripts/bench_attention.py --repeats 3 --out docs/benchmarks/cpu          # CPU, lengths 512..8192
    python scripts/bench_attention.py --device cuda --batch-tokens 131072 \\
        --set local_global.window_size=512 --set local_global.num_global_tokens=16 \\
        --set performer.num_features=256 --set strided.stride=4 \\
        --mamba-ssm-src .gpu_baselines/mamba_src/mamba_ssm                              # GPU, 1K..64K
    python scripts/bench_attention.py --list                                           # cases and knobs
    python scripts/bench_attention.py --single --mechanism performer --length 4096     # one cell, JSON
"""

import sys

from hierarchicalvlm.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
