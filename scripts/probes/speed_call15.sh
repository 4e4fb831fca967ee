#!/usr/bin/env bash
# Issue 14, 2026-12-01 third session, call B on one H200: the FAVOR+ kernels back at two query-backward kernels (the
# fused one of call A spilled), the sequence-summing kernels with transposed logits, a launch shape per kernel —
# their GPU tests, each kernel's shape tuned, and a profile of the performer layer at 16K. Logs straight to $OUT.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
timeout 90 python3 -m pytest -m gpu -v -rA -p no:cacheprovider tests/attention/test_favor_triton.py \
    > "$OUT/favor-tests.log" 2>&1
timeout 200 python3 scripts/tune_favor_kernel.py --per-kernel --out "$OUT/favor_tuning_per_kernel.json" \
    > "$OUT/tune.log" 2>&1
timeout 80 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --set performer.num_features=256 \
    --single --mechanism performer --length 16384 --profile 45 > "$OUT/cell-performer-16384.txt" 2>&1
