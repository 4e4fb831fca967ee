#!/usr/bin/env bash
# Issue 14, 2026-12-01 first device call: GPU 1 runs the whole GPU suite on the code of the last stop; GPU 0 re-times
# local / local_global against the FlexAttention baseline with dynamo reset between cases, then profiles single cells
# (local_global and its baseline at 4K and 16K, performer at 16K). Small files only, one tarball.
set -u
source scripts/probes/device_setup.sh
( CUDA_VISIBLE_DEVICES=1 timeout "${TEST_SECONDS:-330}" python3 -m pytest -m gpu -v -rA --durations=0 \
    -p no:cacheprovider tests > logs/gpu/suite.log 2>&1; echo "exit $?" >> logs/gpu/suite.log ) &
(
  export CUDA_VISIBLE_DEVICES=0
  LG="--set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16 --set local_global.global_tokens=first"
  timeout 150 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --lengths 4096,16384,65536 \
      --mechanisms local,local_global $LG --no-cores --out logs/gpu/bench-lg > logs/gpu/bench-lg.log 2>&1
  for cell in local_global:4096 flex_local_global:4096 local_global:16384 flex_local_global:16384 performer:16384; do
    timeout 45 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $LG --set performer.num_features=256 \
        --single --mechanism "${cell%%:*}" --length "${cell##*:}" --profile 40 > "logs/gpu/profile-${cell%%:*}-${cell##*:}.txt" 2>&1
  done
) &
wait
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.md' \) -size -3M \
  | tar czf "$OUT/t.tgz" -T -
