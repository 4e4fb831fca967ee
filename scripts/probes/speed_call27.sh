#!/usr/bin/env bash
# Issue 14, 2026-12-01 seventh session, on one H200: the five mechanisms trained at 64K level-2 tokens, whole network
# compiled (docs/ablation/h200-64k), each run's folder returned as one archive with a plain name (hydra's job folder
# names hold '=' and ',', which the device tool does not return), then the longest trainable video per mechanism
# with what time is left. Everything goes straight to $OUT, so a call cut off at its limit returns what it had.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
deadline=$(( $(date +%s) + ${CALL_SECONDS:-540} ))
left() { echo $(( deadline - $(date +%s) )); }
TRAIN="experiment=long_seq_ablation_gpu data.num_frames=1024 trainer.max_steps=25 data.num_train=100
 trainer.limit_val_batches=2 test=false callbacks.model_checkpoint=null callbacks.last_checkpoint=null"
for mechanism in full performer local_global strided mamba; do
  extra=""; [ "$mechanism" = local_global ] && extra="attention.global_tokens=last"
  budget=$(( $(left) < ${RUN_SECONDS:-150} ? $(left) : ${RUN_SECONDS:-150} ))
  [ "$budget" -gt 20 ] || break
  timeout "$budget" python3 train.py -m $TRAIN attention=$mechanism $extra \
      hydra.sweep.dir=/tmp/train64k/$mechanism > "$OUT/train64k-$mechanism.log" 2>&1
  echo "$mechanism exit $? at $(date -u +%H:%M:%S)" >> "$OUT/times.txt"
  tar czf "$OUT/train64k-$mechanism.tgz" -C /tmp/train64k "$mechanism"
done
[ "$(left)" -gt 60 ] && timeout "$(left)" python3 scripts/max_seq_len.py experiment=long_seq_ablation_gpu \
    model.net.activation_checkpointing=true data.batch_size=1 --attention local_global,performer,mamba,strided \
    --start-frames 16384 --max-frames 32768 --tolerance 0.9 --memory-cap-gb 80 --out "$OUT/max_seq_len.json" \
    > "$OUT/max_seq_len.log" 2>&1
exit 0
