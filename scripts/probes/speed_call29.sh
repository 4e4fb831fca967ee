#!/usr/bin/env bash
# Issue 14, 2026-12-02 eighth session, call B on one H200: the five mechanisms trained at 64K level-2 tokens, whole
# network compiled (docs/ablation/h200-64k). The two earlier tries (sixth and seventh sessions, scripts removed: their
# outputs were lost with their sessions) returned hydra's job folders, whose names hold '=' and ',' or whose archives held tensorboard
# and wandb files and were too big; here one archive holds only what the report reads (every job's summary.json, its
# hydra config and its CSV metrics), rewritten after every job so a call cut off keeps its jobs.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
deadline=$(( $(date +%s) + ${CALL_SECONDS:-560} ))
left() { echo $(( deadline - $(date +%s) )); }
TRAIN="experiment=long_seq_ablation_gpu data.num_frames=1024 trainer.max_steps=25 data.num_train=100
 trainer.limit_val_batches=2 test=false callbacks.model_checkpoint=null callbacks.last_checkpoint=null"
mkdir -p /tmp/train64k
for mechanism in full performer local_global strided mamba; do
  extra=""; [ "$mechanism" = local_global ] && extra="attention.global_tokens=last"
  budget=$(( $(left) < ${RUN_SECONDS:-200} ? $(left) : ${RUN_SECONDS:-200} ))
  [ "$budget" -gt 20 ] || break
  timeout "$budget" python3 train.py -m $TRAIN attention=$mechanism $extra \
      hydra.sweep.dir=/tmp/train64k/sweep > "$OUT/train64k-$mechanism.log" 2>&1
  echo "$mechanism exit $? at $(date -u +%H:%M:%S)" >> "$OUT/times.txt"
  (cd /tmp/train64k && find sweep -type f \( -name summary.json -o -name '*.yaml' -o -name '*.csv' \) -size -5M \
      | tar czf "$OUT/train64k.tgz" -T -)
done
exit 0
