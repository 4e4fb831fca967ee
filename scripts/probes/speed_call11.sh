#!/usr/bin/env bash
# Issue 14, 2026-12-01 second session, call C (2x H200, ~8 min): GPU 0 runs the whole GPU suite (4 pytest workers
# sharing the card: compiling is CPU-bound); GPU 1 re-measures the longest trainable video per mechanism; then both
# GPUs run one GPU vs DDP vs FSDP at the same global batch in a fixed order (loss parity, item 7). Small files only.
set -u
source scripts/probes/device_setup.sh
(
  export CUDA_VISIBLE_DEVICES=0
  /usr/bin/time -f "suite wall %e s" timeout 300 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
      -p no:cacheprovider tests > logs/gpu/suite.log 2>&1
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
