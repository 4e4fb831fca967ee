#!/usr/bin/env bash
# Issue 14, 2026-12-01 second session, call A (2x H200, ~6 min): GPU 0 times and profiles the one-scan bidirectional
# mamba (split_heads) at 64K, the performer with its packed, token-major kernel entry at 16K, and profiles the
# local_global layer and its FlexAttention baseline at 4K (the unattributed 0.5 ms); GPU 1 runs the whole GPU suite.
set -u
source scripts/probes/device_setup.sh
KNOBS="--set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16
 --set local_global.global_tokens=first --set performer.num_features=256 --set full.kernel=cudnn"
cell() {  # name length [extra args...]: one timed cell and its kernel profile
  local name=$1 length=$2; shift 2
  timeout 150 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $KNOBS --single \
      --mechanism "$name" --length "$length" --profile 30 "$@" > "logs/gpu/cell-$name-$length${TAG:-}.txt" 2>&1
}
(
  export CUDA_VISIBLE_DEVICES=0
  TAG=-split cell mamba 65536 --set mamba.bidirectional_scan=split_heads
  cell performer 16384
  cell local_global 4096
  cell flex_local_global 4096
  TAG=-two cell mamba 65536 --set mamba.bidirectional_scan=two_scans
) &
(
  export CUDA_VISIBLE_DEVICES=1
  /usr/bin/time -f "suite wall %e s" timeout 400 python3 -m pytest -m gpu -q -rfEs --durations=25 -p no:cacheprovider \
      tests > logs/gpu/suite.log 2>&1
) &
wait
cd logs/gpu && tar czf "$OUT/a.tgz" card.txt *.txt *.log
