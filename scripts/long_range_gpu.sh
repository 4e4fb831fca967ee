#!/bin/bash
# The long-range needle sweep (experiment=long_range_gpu) with every job side by side on one GPU (16 cores):
# 6 mechanisms x 3 seeds at 1K tokens, full and local at 4K, full with the memory level on. Each job stops after
# LIMIT seconds (SIGINT: recorded, and resumed by the next run of this script). The report and two tarballs
# (summaries and logs without checkpoints; each job's console log) go to OUT.
#
#   OUT=/tmp/out LIMIT=450 bash scripts/long_range_gpu.sh
cd "$(dirname "$0")/.."
OUT=${OUT:-logs/long_range}; mkdir -p "$OUT"
# Wheels the GPU image lacks (hydra, omegaconf, wandb: ../shared/tools/device-wheels.sh fills .whl/), if present.
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1 || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 WANDB_MODE=disabled HYDRA_FULL_ERROR=1
nvidia-smi -L
LIMIT=${LIMIT:-470}
JOBLOGS=$(mktemp -d)
job() { timeout -s INT "$LIMIT" python3 train.py -m experiment=long_range_gpu "$@" > "$JOBLOGS/logs_$(echo "$@" | tr ' =/' '_-_').txt" 2>&1 & }
for a in full local local_global performer mamba strided; do
  for s in 0 1 2; do job attention=$a data.num_frames=256 seed=$s data.num_workers=0; done
done
job attention=full data.num_frames=1024 seed=0 data.num_workers=2
job attention=local data.num_frames=1024 seed=0 data.num_workers=2
job attention=full data.num_frames=256 seed=0 model.net.memory_enabled=true data.num_workers=0
wait
python3 scripts/ablation_report.py logs/long_range/multiruns/long_range_gpu --out logs/long_range/report_gpu > "$OUT/report_cli.txt" 2>&1
tar czf "$OUT/long_range_gpu.tgz" --exclude='*.ckpt' --exclude='tensorboard' logs/long_range
tar czf "$OUT/joblogs.tgz" -C "$JOBLOGS" .
ls -la "$OUT"
