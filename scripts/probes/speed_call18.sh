#!/usr/bin/env bash
# Issue 14, 2026-12-01 fourth session, call C on one H200: the performer and full cells at 16K after the FAVOR+
# kernels moved to base-2 exponentials and a bf16 state; FlexAttention mask blocks and kernel tiles for local_global
# (scripts/probes/flex_tiles.py); the FAVOR+ GPU tests. Logs straight to $OUT.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
for name in performer full; do
  timeout 45 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --set performer.num_features=256 \
      --set full.kernel=cudnn --single --mechanism $name --length 16384 > "$OUT/cell-$name-16384.txt" 2>&1
done
timeout 100 python3 -m pytest -m gpu -v -rA -p no:cacheprovider tests/attention/test_favor_triton.py \
    tests/test_compile.py tests/attention/test_gpu_paths.py -k "favor or performer" > "$OUT/favor-tests.log" 2>&1
timeout 260 python3 scripts/probes/flex_tiles.py 16384 4096 65536 > "$OUT/flex-tiles.log" 2>&1
