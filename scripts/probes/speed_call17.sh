#!/usr/bin/env bash
# Issue 14, 2026-12-01 fourth session, call A on one H200: the FAVOR+ logits on bf16 tensor cores (ω rounded to
# bf16) and the split merges as one Triton kernel each — every kernel's launch shape re-tuned, the performer and full
# cells at 16K on the bench's new step (no loss), then the whole GPU suite. Logs straight to $OUT.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
timeout 230 python3 scripts/tune_favor_kernel.py --per-kernel --out "$OUT/favor_tuning_per_kernel.json" \
    > "$OUT/tune.log" 2>&1
for name in performer full; do
  timeout 45 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --set performer.num_features=256 \
      --set full.kernel=cudnn --single --mechanism $name --length 16384 > "$OUT/cell-$name-16384.txt" 2>&1
done
/usr/bin/time -f "suite wall %e s" timeout 250 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
    -p no:cacheprovider tests > "$OUT/suite.log" 2>&1
