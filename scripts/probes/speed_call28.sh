#!/usr/bin/env bash
# Issue 14, 2026-12-02 eighth session, call A on one H200: the benchmark command on the final code, every row
# and every external baseline in one run (speed_call6.sh; the log now gives each cell's wall time, compilation and
# autotuning included). Its folder is packed after every cell is written, so a run cut by the limit returns its cells.
set -u
BENCH_SECONDS=${BENCH_SECONDS:-565} bash scripts/probes/speed_call6.sh
