#!/usr/bin/env bash
# Issue 14, what is left for a next call on one H200 (~5 min): kernel profiles of the local_global layer and its
# FlexAttention baseline at 16K (where the layer was 0.98x the baseline on 2026-12-01), then the longest trainable
# video per mechanism re-measured. Every log is written straight under $OUT, so a call cut off at its limit still
# returns what it had (the first run of this probe packed its logs only at the end, ran past the call's limit and
# returned nothing). Give the call >= 60 s more than the timeouts below add up to.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
KNOBS="--set local_global.window_size=512 --set local_global.num_global_tokens=16 --set local_global.global_tokens=first"
for name in local_global flex_local_global; do
  timeout 70 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $KNOBS --single \
      --mechanism "$name" --length 16384 --profile 30 > "$OUT/cell-$name-16384.txt" 2>&1
done
timeout 180 python3 scripts/max_seq_len.py experiment=long_seq_ablation_gpu model.net.activation_checkpointing=true \
    data.batch_size=1 --attention local_global,performer,mamba,strided --start-frames 16384 --max-frames 32768 \
    --tolerance 0.9 --memory-cap-gb 80 --out "$OUT/max_seq_len.json" > "$OUT/max_seq_len.log" 2>&1
