#!/bin/bash
# Device calls on a 2x H200 machine kept warm between calls: the long-range grid (and a GPU soak, SOAK=...) run
# detached (setsid) through scripts/gpu_jobs.sh for GRID_SECONDS, across three calls, each returning a snapshot of
# the logs; the GPU suite runs alone on GPU 1 at the start (unless GPU_SUITE= is given empty). Run from the repository root, carrying .whl/ and logs/gpu.
# Jobs whose folder under logs/gpu/runs already says `completed` are skipped (sweep resume): to finish a grid, put
# the completed job folders there (without checkpoints) and add "logs/gpu" to the call's carry. Logs must stay
# under logs/ (ignored): each device call syncs the working tree and deletes untracked files git does not ignore
# (on 2026-11-30 that removed a running grid's log folder, `gpulogs/`, and failed every job).
# Carry logs/gpu on the FIRST call only: a carried path replaces the machine's copy, so carrying it again in a later
# call replaced the running grid's logs with this machine's (2026-11-30, 16:42 UTC: every running job lost again).
#   bash scripts/probes/grid_call.sh start     # call 1: start grid (+ suite unless GPU_SUITE=, + SOAK); snapshot after ~9 min
#   bash scripts/probes/grid_call.sh wait      # call 2 (carry .whl only): snapshot after ~9 minutes
#   bash scripts/probes/grid_call.sh finish    # call 3: wait for the grid's deadline, then its final tarballs
# The jobs: what docs/long_range/h200-mean, h200-match-16k and order-gpu still lack after 2026-11-30 (the calls of
# 19:29-19:52 UTC ran full attention's 16K seeds, match at 16K, order_gpu seed 0 and the 1K/4K seeds), 16K first.
job() { echo "-m experiment=long_range_gpu attention=$1 data.num_frames=$2 final_epochs=1 seed=$3 data.num_workers=$(( $2 >= 4096 ? 4 : $2 >= 1024 ? 3 : 2 ))"; }
JOBS=()
for a in mamba strided; do JOBS+=("$(job $a 4096 1)"); done
for a in local_global performer mamba strided; do JOBS+=("$(job $a 4096 2)"); done
for s in 1 2; do JOBS+=("-m experiment=long_range_gpu attention=full sweep_name=long_range_gpu_match data.tasks=[match] data.num_frames=4096 final_epochs=1 seed=$s data.num_workers=4"); done
for s in 1 2; do JOBS+=("-m experiment=order_gpu seed=$s data.num_workers=3"); done
JOBS+=("$(job local 4096 0)" "$(job local 1024 2)")
mode=$1; mkdir -p logs/gpu; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
GRID_SECONDS=${GRID_SECONDS:-1440}
snapshot() {
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  cp logs/gpu/driver.txt logs/gpu/smi.txt "$OUT/" 2>/dev/null
  tar czf "$OUT/logs_snapshot.tgz" --exclude='*.ckpt' --exclude='tensorboard' --exclude=final logs/gpu 2>/dev/null
  ls -la "$OUT"; tail -3 logs/gpu/driver.txt
}
alive() {  # the detached grid of call 1 still runs here (a later call that carried logs/gpu replaced its folder)
  if [ ! -f logs/gpu/driver.txt ] || ! pgrep -f scripts/gpu_jobs.sh > /dev/null; then
    echo "grid_call.sh: no running grid here (logs/gpu/driver.txt missing or gpu_jobs.sh gone): a fresh machine," \
         "or this call carried logs/gpu and so replaced the running grid's folder; not waiting" >&2
    snapshot; exit 3
  fi
}
case $mode in
  start)
    date +%s > logs/gpu/t0
    setsid nohup nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv -l 30 > logs/gpu/smi.txt 2>&1 < /dev/null &
    # SOAK=<mechanism>: its GPU soak pinned to GPU 0, weighing PIN_WEIGHT jobs there (PIN_WEIGHT=MAX_PER_GPU keeps
    # the card to itself: mamba's soak passed that way on 2026-11-30); the GPU suite runs alone on GPU 1 first
    # (SUITE_GPU), then the grid's jobs spread over both cards, at most MAX_PER_GPU (weighted) on each
    DEADLINE=$(( $(cat logs/gpu/t0) + GRID_SECONDS )) MAX_JOBS=${MAX_JOBS:-16} MAX_PER_GPU=${MAX_PER_GPU:-9} \
      PIN_WEIGHT=${PIN_WEIGHT:-4} GPU_SUITE=${GPU_SUITE-1} SUITE_GPU=${SUITE_GPU-1} \
      OUT=$PWD/logs/gpu/final JOBLOGS=$PWD/logs/gpu/joblogs LOGS=$PWD/logs/gpu/runs \
      setsid nohup bash scripts/gpu_jobs.sh ${SOAK:+"@0 -m experiment=soak_gpu attention=$SOAK attention.kernel=fused data.num_workers=6"} "${JOBS[@]}" \
      > logs/gpu/driver.txt 2>&1 < /dev/null &
    s=$(date +%s)
    while [ -n "${GPU_SUITE-1}" ] && ! grep -q "^exit" logs/gpu/final/gpu_suite.txt 2>/dev/null && (( $(date +%s) - s < ${CALL_SECONDS:-560} - 20 )); do
      sleep 5
    done
    cp logs/gpu/final/gpu_suite.txt "$OUT/" 2>/dev/null; tail -4 "$OUT/gpu_suite.txt"
    sleep $(( ${CALL_SECONDS:-560} - ($(date +%s) - s) - 15 )) 2>/dev/null
    snapshot ;;
  wait)
    alive; sleep ${CALL_SECONDS:-560}; snapshot ;;
  finish)
    alive; end=$(( $(cat logs/gpu/t0) + GRID_SECONDS + 120 ))
    while [ ! -f logs/gpu/final/joblogs.tgz ] && (( $(date +%s) < end )); do sleep 10; done
    sleep 5; cp logs/gpu/final/* "$OUT/" 2>/dev/null; snapshot ;;
esac
