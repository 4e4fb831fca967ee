#!/usr/bin/env bash
# Issue 14, 2026-12-01 fourth session, call D on one H200, the final code: the whole GPU suite, then the issue's
# benchmark command (speed_call6.sh: every row and every external baseline, eager layers) in the time left.
# (Call D ran these commands with the benchmark's lines inlined; one copy of them is kept, in speed_call6.sh.)
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
/usr/bin/time -f "suite wall %e s" timeout 165 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
    -p no:cacheprovider tests > "$OUT/suite.log" 2>&1
BENCH_SECONDS=405 bash scripts/probes/speed_call6.sh
