#!/usr/bin/env bash
# Issue 14, 2026-12-01 fifth session, call D on one H200: the benchmark command on the final code (every row
# and every external baseline, one complete run, via speed_call6.sh), then the GPU tests of the paths changed after
# this session's whole-suite run (local_global's flex paths and global rows, compiled layers).
set -u
source scripts/probes/device_setup.sh  # for the tests; speed_call6.sh sources it again in its own shell
BENCH_SECONDS=${BENCH_SECONDS:-440} bash scripts/probes/speed_call6.sh
timeout 100 python3 -m pytest -m gpu -n 4 -v -rA -p no:cacheprovider tests/attention/test_local_global.py \
    tests/attention/test_gpu_paths.py tests/test_compile.py -k "local or flex" > "$OUT/local-global-tests.log" 2>&1
