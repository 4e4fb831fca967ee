#!/bin/bash
# Device calls of 2026-11-30 (fourth session) on a 2x H200 machine kept warm between calls: the long-range grid
# (scripts/long_range_gpu.sh) and the mamba soak run detached (setsid) for ~24 minutes, across three calls, each
# call returning a snapshot of the logs. Run from the repository root with .whl/ carried.
# What happened: the folder was then `gpulogs/`, which git did not ignore, so call 2's sync of the working tree
# deleted it; every job still running failed on its CSV log (FileNotFoundError). Jobs completed in call 1 came
# back in its snapshot (docs/long_range/h200-mean). The folder is now logs/gpu/ (ignored).
# Jobs whose folder under logs/gpu/runs already says `completed` are skipped (sweep resume): to finish a grid, put
# the completed job folders there (without checkpoints) and add "logs/gpu" to the call's carry.
#   bash scripts/probes/grid_call.sh start     # call 1: start the grid + soak, run the GPU suite on GPU 1, snapshot
#   bash scripts/probes/grid_call.sh wait      # call 2: snapshot after ~9 minutes
#   bash scripts/probes/grid_call.sh finish    # call 3: wait for the grid's deadline, then its final tarballs
mode=$1; mkdir -p logs/gpu; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
GRID_SECONDS=${GRID_SECONDS:-1440}
snapshot() {
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  cp logs/gpu/driver.txt logs/gpu/smi.txt "$OUT/" 2>/dev/null
  tar czf "$OUT/logs_snapshot.tgz" --exclude='*.ckpt' --exclude='tensorboard' --exclude=final logs/gpu 2>/dev/null
  ls -la "$OUT"; tail -3 logs/gpu/driver.txt
}
case $mode in
  start)
    date +%s > logs/gpu/t0
    setsid nohup nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv -l 30 > logs/gpu/smi.txt 2>&1 < /dev/null &
    # the soak is pinned to GPU 0 and counted as 5 jobs there, so it shares its card with few grid jobs
    DEADLINE=$(( $(cat logs/gpu/t0) + GRID_SECONDS )) MAX_JOBS=${MAX_JOBS:-16} PIN_WEIGHT=5 SEEDS_LONGEST=${SEEDS_LONGEST:-0} \
      OUT=$PWD/logs/gpu/final JOBLOGS=$PWD/logs/gpu/joblogs LOGS=$PWD/logs/gpu/runs \
      setsid nohup bash scripts/long_range_gpu.sh "@0 -m experiment=soak_gpu attention=mamba data.num_workers=6" \
      > logs/gpu/driver.txt 2>&1 < /dev/null &
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site_fg .whl/*.whl >/dev/null 2>&1
    export PYTHONPATH=/tmp/site_fg:$PWD/src OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 WANDB_MODE=disabled
    s=$(date +%s)
    CUDA_VISIBLE_DEVICES=1 timeout -s INT ${SUITE_SECONDS:-450} python3 -m pytest -m gpu -q -rA -p no:cacheprovider tests \
      > "$OUT/gpu_suite.txt" 2>&1
    echo "exit $? after $(( $(date +%s) - s )) s (GPU 1, beside the grid's jobs)" >> "$OUT/gpu_suite.txt"
    tail -4 "$OUT/gpu_suite.txt"
    sleep $(( ${CALL_SECONDS:-545} - ($(date +%s) - s) - 15 )) 2>/dev/null
    snapshot ;;
  wait)
    sleep ${CALL_SECONDS:-560}; snapshot ;;
  finish)
    end=$(( $(cat logs/gpu/t0) + GRID_SECONDS + 120 ))
    while [ ! -f logs/gpu/final/joblogs.tgz ] && (( $(date +%s) < end )); do sleep 10; done
    sleep 5; cp logs/gpu/final/* "$OUT/" 2>/dev/null; snapshot ;;
esac
