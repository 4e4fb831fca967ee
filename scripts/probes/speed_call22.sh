#!/usr/bin/env bash
# Issue 14, 2026-12-01 fifth session, call C on one H200: the local_global layer's global query rows at 64K, in the
# block mask or beside it by SDPA (each kernel) or plain products (scripts/probes/global_rows.py). Logs to $OUT.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
timeout 240 python3 scripts/probes/global_rows.py 65536 > "$OUT/global-rows-65536.log" 2>&1
