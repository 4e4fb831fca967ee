#!/usr/bin/env bash
# Issue 14, last device call: GPU 0 re-runs the graph-break and GPU-path tests after the fix; GPU 1 trains the
# Performer job that the previous call's deadline cut off (64K tokens). Small files only, one tarball.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 WANDB_MODE=disabled
mkdir -p logs/gpu
( CUDA_VISIBLE_DEVICES=0 timeout "${TEST_SECONDS:-140}" python3 -m pytest -m gpu -v -rA --durations=0 \
    -p no:cacheprovider tests/test_compile.py tests/attention/test_gpu_paths.py > logs/gpu/suite-part.log 2>&1 ) &
( CUDA_VISIBLE_DEVICES=1 timeout "${TRAIN_SECONDS:-150}" python3 train.py -m experiment=long_seq_ablation_gpu \
    data.num_frames=1024 trainer.max_steps=25 data.num_train=100 trainer.limit_val_batches=2 test=false \
    callbacks.model_checkpoint=null callbacks.last_checkpoint=null attention=performer \
    hydra.sweep.dir=logs/gpu/train64k/performer > logs/gpu/train64k-performer.log 2>&1 ) &
wait
cd logs/gpu && find . -type f \( -name 'summary.json' -o -name '*.log' -o -name 'metrics.csv' -o -name 'config.yaml' \
  -o -name 'overrides.yaml' \) -size -3M | tar czf "$OUT/t.tgz" -T -
