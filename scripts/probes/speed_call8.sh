#!/usr/bin/env bash
# Issue 14, what is left for a next call on a 2x H200 machine (~5 min, not yet run): one GPU vs DDP vs FSDP at the same
# global batch, batches in a fixed order, for loss parity (item 7). Give the call >= 400 s: the logs are packed after
# the 300-s run (a device call returns at most 8 files, so they cannot all be written under $OUT one by one).
# The single-GPU leftovers (16K profiles, max length) are speed_call13.sh.
set -u
source scripts/probes/device_setup.sh
STEPS=12 OUT=logs/gpu/scaling PYTHON=python3 timeout 300 bash scripts/gpu_scaling.sh > logs/gpu/scaling.log 2>&1
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.json' -o -name 'metrics.csv' \) -size -3M \
  | tar czf "$OUT/t.tgz" -T -
