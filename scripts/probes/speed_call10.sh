#!/usr/bin/env bash
# Issue 14, 2026-12-01 second session, call B (2x H200, ~9.5 min): GPU 0 runs the benchmark command (eager
# layers, every row, every external baseline: the one-call table); GPU 1 trains the five mechanisms at 64K level-2
# tokens, whole network compiled (docs/ablation/h200-64k). Every job stops by the call's deadline. Small files only.
set -u
source scripts/probes/device_setup.sh
deadline=$(( $(date +%s) + ${CALL_SECONDS:-560} ))
left() { echo $(( deadline - $(date +%s) )); }
TRAIN="experiment=long_seq_ablation_gpu data.num_frames=1024 trainer.max_steps=25 data.num_train=100
 trainer.limit_val_batches=2 test=false callbacks.model_checkpoint=null callbacks.last_checkpoint=null"
(
  export CUDA_VISIBLE_DEVICES=0
  date -u +"bench start %H:%M:%S" > logs/gpu/times.txt
  timeout "$(left)" python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 \
      --lengths 4096,16384,65536 --mechanisms full,local,local_global,strided,performer,mamba --set full.kernel=cudnn \
      --set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16 \
      --set local_global.global_tokens=first --set performer.num_features=256 --set strided.stride=4 --cores \
      --skip favor_core,causal_linear_attn_core --out logs/gpu/bench-eager > logs/gpu/bench-eager.log 2>&1
  date -u +"bench end %H:%M:%S" >> logs/gpu/times.txt
) &
(
  export CUDA_VISIBLE_DEVICES=1
  for mechanism in performer mamba full local_global strided; do
    extra=""; [ "$mechanism" = local_global ] && extra="attention.global_tokens=last"
    timeout "$(left)" python3 train.py -m $TRAIN attention=$mechanism $extra \
        hydra.sweep.dir="logs/gpu/train64k/$mechanism" > "logs/gpu/train64k-$mechanism.log" 2>&1
  done
) &
wait
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.md' \
  -o -name '*.png' -o -name '*.yaml' \) -size -3M | tar czf "$OUT/t.tgz" -T -
