#!/usr/bin/env bash
# Issue 14, what the 2026-12-01 session could not run (written then, not yet run; needs a 2x H200 machine, ~8 min):
# GPU 0 profiles the final local_global layer and its FlexAttention baseline at 4K (the unattributed 0.5 ms) and the
# performer layer at 16K under --compile-layers; GPU 1 re-measures the longest trainable video per mechanism; then
# both GPUs run one GPU vs DDP vs FSDP at the same global batch in a fixed order (loss parity, item 7).
set -u
source scripts/probes/device_setup.sh
LG="--set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16
 --set local_global.global_tokens=first --set performer.num_features=256"
(
  export CUDA_VISIBLE_DEVICES=0
  for cell in local_global:4096 flex_local_global:4096 local:4096 local:65536; do
    timeout 90 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $LG --single \
        --mechanism "${cell%%:*}" --length "${cell##*:}" --profile 40 > "logs/gpu/profile-${cell%%:*}-${cell##*:}.txt" 2>&1
  done
  timeout 90 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 $LG --compile-layers --single \
      --mechanism performer --length 16384 --profile 40 > logs/gpu/profile-compiled-performer-16384.txt 2>&1
) &
(
  export CUDA_VISIBLE_DEVICES=1
  timeout 240 python3 scripts/max_seq_len.py experiment=long_seq_ablation_gpu model.net.activation_checkpointing=true \
      data.batch_size=1 --attention local_global,performer,mamba,strided --start-frames 16384 --max-frames 32768 \
      --tolerance 0.9 --memory-cap-gb 80 --out logs/gpu/max_seq_len.json > logs/gpu/max_seq_len.log 2>&1
) &
wait
STEPS=12 OUT=logs/gpu/scaling PYTHON=python3 timeout 240 bash scripts/gpu_scaling.sh > logs/gpu/scaling.log 2>&1
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.json' -o -name 'metrics.csv' \) -size -3M \
  | tar czf "$OUT/t.tgz" -T -
