#!/usr/bin/env bash
# Issue 14, 2026-12-01 second session, call C on one H200 (no two-GPU machine lent): the whole GPU suite (4 pytest
# workers sharing the card: compiling is CPU-bound), then the five mechanisms trained at 64K level-2 tokens, whole
# network compiled (docs/ablation/h200-64k), each stopped by the call's deadline. Small files only.
set -u
source scripts/probes/device_setup.sh
deadline=$(( $(date +%s) + ${CALL_SECONDS:-570} ))
left() { echo $(( deadline - $(date +%s) )); }
/usr/bin/time -f "suite wall %e s" timeout 300 python3 -m pytest -m gpu -n 4 -v -rA --durations=30 \
    -p no:cacheprovider tests > logs/gpu/suite.log 2>&1
TRAIN="experiment=long_seq_ablation_gpu data.num_frames=1024 trainer.max_steps=25 data.num_train=100
 trainer.limit_val_batches=2 test=false callbacks.model_checkpoint=null callbacks.last_checkpoint=null"
for mechanism in mamba performer full local_global strided; do
  extra=""; [ "$mechanism" = local_global ] && extra="attention.global_tokens=last"
  timeout "$(left)" python3 train.py -m $TRAIN attention=$mechanism $extra \
      hydra.sweep.dir="logs/gpu/train64k/$mechanism" > "logs/gpu/train64k-$mechanism.log" 2>&1
done
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.yaml' \) \
  -size -3M | tar czf "$OUT/t.tgz" -T -
