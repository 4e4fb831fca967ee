#!/bin/bash
# One device call (docs/EMBEDDED_TASK.md, "local's reach"): `local` trained on needles inside the last tenth of the
# video (GPU 1), then each checkpoint tested on every depth; beside it scripts/gpu_jobs.sh runs the GPU suite and
# three 4K-token needle jobs (GPU 0 and 1). Run from the repository root on a 2-GPU machine with .whl/ carried.
# On 2026-11-30 the call ran with the sweep's default lengths (256, 1024; 4096 was stopped) and the test-on-every-
# depth step failed on the job folder's name (since fixed: run/cli.py quotes path overrides), so its per-depth
# figures are not in the docs.
export PYTHONPATH=/tmp/site:$PWD/src OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 WANDB_MODE=disabled HYDRA_FULL_ERROR=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
mkdir -p gpulogs
( CUDA_VISIBLE_DEVICES=1 timeout -s INT 280 python3 train.py -m experiment=long_range_gpu attention=local seed=0 \
    data.num_frames=256,1024 sweep_name=long_range_in_reach 'data.needle_depth=[0.9,1.0]' data.num_workers=4 \
    paths.log_dir="$PWD/gpulogs" > gpulogs_reach_train.txt 2>&1
  for ck in gpulogs/long_range/multiruns/long_range_in_reach/*/checkpoints/last.ckpt; do
    CUDA_VISIBLE_DEVICES=1 timeout -s INT 120 python3 train.py train=false test=true "ckpt_path=$ck" \
      'data.needle_depth=[0.0,1.0]' data.num_test=1024 data.num_workers=4 >> gpulogs_reach_eval.txt 2>&1
    echo "eval of $ck: exit $?"
  done ) > reach_chain.txt 2>&1 &
OUT=$OUT LIMIT=${LIMIT:-380} GPU_SUITE=1 bash scripts/gpu_jobs.sh \
  "-m experiment=long_range_gpu attention=performer data.num_frames=1024 seed=0 data.num_workers=4" \
  "-m experiment=long_range_gpu attention=strided data.num_frames=1024 seed=0 data.num_workers=4" \
  "-m experiment=long_range_gpu attention=local_global data.num_frames=1024 seed=0 data.num_workers=4"
wait
cat reach_chain.txt
tar czf "$OUT/reach.tgz" gpulogs_reach_*.txt reach_chain.txt gpulogs/long_range/multiruns/long_range_in_reach --exclude='*.ckpt'
