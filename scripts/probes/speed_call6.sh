#!/usr/bin/env bash
# Issue 14, 2026-12-01, the final code on one H200: the benchmark command, eager layers, every row and every
# external baseline, one complete run (the GPU suite runs in its own call: speed_call7.sh). Small files only.
set -u
source scripts/probes/device_setup.sh
date -u +"bench start %H:%M:%S" > logs/gpu/times.txt
timeout "${BENCH_SECONDS:-520}" python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 \
    --lengths 4096,16384,65536 --mechanisms full,local,local_global,strided,performer,mamba --set full.kernel=cudnn \
    --set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16 \
    --set local_global.global_tokens=first --set performer.num_features=256 --set strided.stride=4 --cores \
    --skip favor_core,causal_linear_attn_core --out logs/gpu/bench-eager > logs/gpu/bench-eager.log 2>&1
date -u +"bench end %H:%M:%S" >> logs/gpu/times.txt
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.md' \
  -o -name '*.png' \) -size -3M | tar czf "$OUT/t.tgz" -T -
