#!/usr/bin/env bash
# Issue 14, what is left for a next call on one H200 (~9 min): the longest trainable video per mechanism re-measured,
# then kernel profiles of the local_global layer and its FlexAttention baseline at 16K with whatever time is left
# (a cold --single --profile run of either at 16K did not finish within 100 s on 2026-12-01: compiling the mask and
# the kernels from nothing). Every log is written straight under $OUT, so a call cut off at its limit still returns
# what it had. Give the call ~40 s more than CALL_SECONDS.
set -u
source scripts/probes/device_setup.sh
deadline=$(( $(date +%s) + ${CALL_SECONDS:-540} ))
left() { echo $(( deadline - $(date +%s) )); }
cp logs/gpu/card.txt "$OUT/"
timeout 240 python3 scripts/max_seq_len.py experiment=long_seq_ablation_gpu model.net.activation_checkpointing=true \
    data.batch_size=1 --attention local_global,performer,mamba,strided --start-frames 16384 --max-frames 32768 \
    --tolerance 0.9 --memory-cap-gb 80 --out "$OUT/max_seq_len.json" > "$OUT/max_seq_len.log" 2>&1
KNOBS="--set local_global.window_size=512 --set local_global.num_global_tokens=16 --set local_global.global_tokens=first"
for name in local_global flex_local_global; do
  timeout "$(left)" python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $KNOBS --single \
      --mechanism "$name" --length 16384 --profile 40 > "$OUT/cell-$name-16384.txt" 2>&1
done
