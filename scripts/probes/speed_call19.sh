#!/usr/bin/env bash
# Issue 14, 2026-12-01 fourth session, call D on one H200, the final code: the whole GPU suite, then the issue's
# benchmark command (every row and every external baseline, eager layers) in the time left. Small files only.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
/usr/bin/time -f "suite wall %e s" timeout 165 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
    -p no:cacheprovider tests > "$OUT/suite.log" 2>&1
date -u +"bench start %H:%M:%S" > logs/gpu/times.txt
timeout 405 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 \
    --lengths 4096,16384,65536 --mechanisms full,local,local_global,strided,performer,mamba --set full.kernel=cudnn \
    --set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16 \
    --set local_global.global_tokens=first --set performer.num_features=256 --set strided.stride=4 --cores \
    --skip favor_core,causal_linear_attn_core --out logs/gpu/bench-eager > logs/gpu/bench-eager.log 2>&1
date -u +"bench end %H:%M:%S" >> logs/gpu/times.txt
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.md' \
  -o -name '*.png' \) -size -3M | tar czf "$OUT/t.tgz" -T -
