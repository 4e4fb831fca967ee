#!/usr/bin/env bash
# Many short CPU trainings at once, one per line of a case file ("<name> <overrides...>"), one thread each:
# which settings make the embedded task learnable in a given number of epochs. docs/EMBEDDED_TASK.md has results.
#
#   EPOCHS=24 bash scripts/learnability_probe.sh scripts/probes/families.txt     # needs ~16 cores for ~10 min
set -u
CASES=${1:?usage: learnability_probe.sh CASE_FILE}
OUT=${OUT:-logs/probe}
EPOCHS=${EPOCHS:-12} THREADS=${THREADS:-1} PYTHON=${PYTHON:-python}
mkdir -p "$OUT"
while read -r name overrides; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  # shellcheck disable=SC2086  # overrides are split on purpose
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS WANDB_MODE=disabled $PYTHON train.py trainer=cpu logger=csv \
    test=false callbacks.model_checkpoint=null callbacks.last_checkpoint=null callbacks.progress_bar=null \
    trainer.max_epochs="$EPOCHS" hydra.run.dir="$OUT/$name" $overrides > "$OUT/$name.log" 2>&1 &
done < "$CASES"
wait
OUT="$OUT" $PYTHON - <<'PY'
import csv, glob, os
out = os.environ["OUT"]
for path in sorted(glob.glob(f"{out}/*/csv/metrics.csv")):
    name = os.path.relpath(path, out).split(os.sep)[0]
    rows = list(csv.DictReader(open(path)))
    accs = [float(r["val/qa_acc"]) for r in rows if r.get("val/qa_acc")]
    print(f"{name:22s} epochs={len(accs):3d} val/qa_acc per epoch: " + " ".join(f"{a:.2f}" for a in accs))
PY
