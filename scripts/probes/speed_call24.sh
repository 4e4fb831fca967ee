#!/usr/bin/env bash
# Issue 14, 2026-12-01 sixth session, call A on one H200: how much of each layer's timed step is host time (the bench
# synchronised after every step until now; scripts/probes/step_timing.py), then the whole GPU suite on the final
# code. Logs straight to $OUT.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
timeout 80 python3 scripts/probes/step_timing.py 16384 performer,full,strided > "$OUT/step-timing-16384.log" 2>&1
timeout 60 python3 scripts/probes/step_timing.py 4096 performer,local > "$OUT/step-timing-4096.log" 2>&1
/usr/bin/time -f "suite wall %e s" timeout 290 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
    -p no:cacheprovider tests > "$OUT/suite.log" 2>&1
