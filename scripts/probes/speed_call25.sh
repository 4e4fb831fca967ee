#!/usr/bin/env bash
# Issue 14, 2026-12-01 sixth session, call B on one H200: the benchmark command on the final code (every row
# and every external baseline, one complete run; static kernels at every length, steps queued back to back).
set -u
BENCH_SECONDS=${BENCH_SECONDS:-550} bash scripts/probes/speed_call6.sh
