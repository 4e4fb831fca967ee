#!/usr/bin/env bash
# Issue 14, 2026-12-01 third session, call C on one H200: the whole GPU suite on the final kernels (4 pytest workers
# sharing the card: compiling is CPU-bound), then profiles at 16K (host operations and kernels) of the performer
# layer and of local_global beside its FlexAttention baseline. Logs straight to $OUT.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
/usr/bin/time -f "suite wall %e s" timeout 240 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
    -p no:cacheprovider tests > "$OUT/suite.log" 2>&1
timeout 60 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --set performer.num_features=256 \
    --single --mechanism performer --length 16384 --profile 60 > "$OUT/cell-performer-16384.txt" 2>&1
KNOBS="--set local_global.window_size=512 --set local_global.num_global_tokens=16 --set local_global.global_tokens=first"
for name in local_global flex_local_global; do
  timeout 100 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $KNOBS --single \
      --mechanism "$name" --length 16384 --profile 40 > "$OUT/cell-$name-16384.txt" 2>&1
done
