#!/usr/bin/env bash
# One GPU vs DDP vs FSDP on two GPUs at the same global batch, then prints throughput and the loss curves.
# Defaults: full attention, 256 frames x 64 tokens = 16K level-2 tokens, dim 512, 8 level-2 layers, 40 steps
# (compute-bound, so the scaling measures the GPUs, not the data loader). Training batches come in a fixed order
# (data.shuffle=false), so one GPU and DDP see the same global batches and their losses can be compared step by
# step. docs/PERFORMANCE.md has the results.
#
#   bash scripts/gpu_scaling.sh                     # outputs under logs/scaling
#   FRAMES=64 DIM=256 DEPTH=4 GLOBAL_BATCH=16 bash scripts/gpu_scaling.sh
set -u
OUT=${OUT:-logs/scaling}
FRAMES=${FRAMES:-256} DIM=${DIM:-512} DEPTH=${DEPTH:-8} STEPS=${STEPS:-40} GLOBAL_BATCH=${GLOBAL_BATCH:-8}
PYTHON=${PYTHON:-python}
COMMON="experiment=long_seq_ablation_gpu data.num_frames=$FRAMES trainer.max_steps=$STEPS data.num_train=2000
 test=false logger=csv callbacks.model_checkpoint=null callbacks.last_checkpoint=null trainer.limit_val_batches=2
 data.num_workers=6 seed=0 model.net.dim=$DIM model.net.num_heads=$((DIM / 64)) model.net.level2_depth=$DEPTH
 trainer.log_every_n_steps=1 data.shuffle=false"
mkdir -p "$OUT"
nvidia-smi -L
for spec in "gpu1 trainer=gpu data.batch_size=$GLOBAL_BATCH" \
            "ddp2 trainer=ddp trainer.devices=2 data.batch_size=$((GLOBAL_BATCH / 2))" \
            "fsdp2 trainer=fsdp trainer.devices=2 data.batch_size=$((GLOBAL_BATCH / 2))"; do
  set -- $spec; name=$1; shift
  echo "== $name: train.py $COMMON $*"
  WANDB_MODE=disabled $PYTHON train.py $COMMON "$@" hydra.run.dir="$OUT/$name" > "$OUT/$name.log" 2>&1 \
    || grep -E "Error" "$OUT/$name.log" | tail -3
done
OUT="$OUT" $PYTHON - <<'PY'
import csv, glob, json, os
out = os.environ["OUT"]
losses = {}
for run in ("gpu1", "ddp2", "fsdp2"):
    path = f"{out}/{run}/summary.json"
    if not os.path.exists(path):
        print(run, "no summary")
        continue
    s = json.load(open(path))
    t = s["throughput"]
    print(run, s["status"], s.get("device"), "| samples/s", t.get("samples_per_sec_median"), "tokens/s",
          t.get("tokens_per_sec_median"), "step_s", t.get("step_time_s_median"), "mfu", t.get("mfu_median"),
          "world", t.get("world_size"))
    for f in glob.glob(f"{out}/{run}/csv/metrics.csv"):
        rows = [r for r in csv.DictReader(open(f)) if r.get("train/loss")]
        losses[run] = {int(r["step"]): float(r["train/loss"]) for r in rows}
        print("   train/loss by step:", [(step, round(loss, 3)) for step, loss in losses[run].items()])
for run in ("ddp2", "fsdp2"):
    common = sorted(set(losses.get("gpu1", {})) & set(losses.get(run, {})))
    if common:
        gaps = [abs(losses[run][s] - losses["gpu1"][s]) for s in common]
        print(f"{run} vs gpu1: {len(common)} common steps, max |loss gap| {max(gaps):.4f}, "
              f"mean {sum(gaps) / len(gaps):.4f}, at step {common[0]}: {gaps[0]:.5f}")
PY
