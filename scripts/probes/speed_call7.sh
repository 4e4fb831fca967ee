#!/usr/bin/env bash
# Issue 14, 2026-12-01, the final code on one H200: the whole GPU suite alone (its time is the suite's time).
set -u
source scripts/probes/device_setup.sh
( time timeout "${TEST_SECONDS:-330}" python3 -m pytest -m gpu -v -rA --durations=0 -p no:cacheprovider tests ) \
    > logs/gpu/suite.log 2>&1; echo "exit $?" >> logs/gpu/suite.log
cd logs/gpu && tar czf "$OUT/t.tgz" card.txt suite.log
