#!/usr/bin/env bash
# Issue 14, 2026-12-01 fifth session, call B on one H200: why FlexAttention rows of the benchmark (each cell a fresh
# process) take 3-8 ms more at 16K/64K than the same step timed in one plain process (scripts/probes/qkv_layout.py):
# the Flex rows under the bench's three isolations, a profiled fresh cell, then the layout probe at 16K.
set -u
source scripts/probes/device_setup.sh
deadline=$(( $(date +%s) + ${CALL_SECONDS:-500} ))
left() { echo $(( deadline - $(date +%s) )); }
cp logs/gpu/card.txt "$OUT/"
COMMON="--device cuda --batch-tokens 131072 --lengths 16384,65536 --mechanisms local,local_global --no-cores
 --skip flex_strided,fla_chunk_linear_attn,mamba_ssm_chunk_scan --set local.window_size=512
 --set local_global.window_size=512 --set local_global.num_global_tokens=16 --set local_global.global_tokens=first"
for isolation in process none; do
  timeout "$(left)" python3 scripts/bench_attention.py $COMMON --isolation $isolation --out "logs/gpu/iso-$isolation" \
      > "$OUT/bench-isolation-$isolation.log" 2>&1
done
timeout "$(left)" python3 scripts/bench_attention.py $COMMON --single --mechanism flex_local_global --length 65536 \
    --profile 30 > "$OUT/profile-flex_local_global-65536.txt" 2>&1
timeout "$(left)" python3 scripts/probes/qkv_layout.py 16384 local_global,flex_local_global,local \
    > "$OUT/qkv-layout-16384.log" 2>&1
