#!/usr/bin/env bash
# Issue 14, 2026-12-01 fifth session, call A on one H200: the q/k/v split probe (scripts/probes/qkv_layout.py, one
# process per length, kernel tables per layout) and the whole GPU suite on this session's code. Logs straight to $OUT.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
for length in 16384 4096 65536; do
  timeout 110 python3 scripts/probes/qkv_layout.py $length > "$OUT/qkv-layout-$length.log" 2>&1
done
/usr/bin/time -f "suite wall %e s" timeout 240 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
    -p no:cacheprovider tests > "$OUT/suite.log" 2>&1
