#!/usr/bin/env bash
# Issue 14, 2026-12-01 third session, call A on one H200: the FAVOR+ kernels with the fused query backward — their
# GPU tests, each kernel's launch shape tuned (scripts/tune_favor_kernel.py --per-kernel), and profiles at 16K of
# the performer layer and of local_global against its FlexAttention baseline. Every log goes straight under $OUT
# (a call cut off at its limit still returns what it had). Give the call >= 60 s more than the timeouts add up to.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
timeout 90 python3 -m pytest -m gpu -v -rA -p no:cacheprovider tests/attention/test_favor_triton.py \
    > "$OUT/favor-tests.log" 2>&1
timeout 240 python3 scripts/tune_favor_kernel.py --per-kernel --out "$OUT/favor_tuning_per_kernel.json" \
    > "$OUT/tune.log" 2>&1
timeout 50 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --set performer.num_features=256 \
    --single --mechanism performer --length 16384 --profile 40 > "$OUT/cell-performer-16384.txt" 2>&1
KNOBS="--set local_global.window_size=512 --set local_global.num_global_tokens=16 --set local_global.global_tokens=first"
for name in local_global flex_local_global; do
  timeout 50 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $KNOBS --single \
      --mechanism "$name" --length 16384 --profile 30 > "$OUT/cell-$name-16384.txt" 2>&1
done
