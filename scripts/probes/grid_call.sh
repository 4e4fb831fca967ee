#!/bin/bash
# Device calls on a 2x H200 machine kept warm between calls: the long-range grid and the mamba soak run detached
# (setsid) through scripts/gpu_jobs.sh for GRID_SECONDS, across three calls, each returning a snapshot of the logs;
# the GPU suite runs alone on GPU 1 at the start. Run from the repository root, carrying .whl/ and logs/gpu.
# Jobs whose folder under logs/gpu/runs already says `completed` are skipped (sweep resume): to finish a grid, put
# the completed job folders there (without checkpoints) and add "logs/gpu" to the call's carry. Logs must stay
# under logs/ (ignored): each device call syncs the working tree and deletes untracked files git does not ignore
# (on 2026-11-30 that removed a running grid's log folder, `gpulogs/`, and failed every job).
# Carry logs/gpu on the FIRST call only: a carried path replaces the machine's copy, so carrying it again in a later
# call replaced the running grid's logs with this machine's (2026-11-30, 16:42 UTC: every running job lost again).
#   bash scripts/probes/grid_call.sh start     # call 1: start grid + soak (+ suite unless GPU_SUITE=); snapshot after ~9 minutes
#   bash scripts/probes/grid_call.sh wait      # call 2 (carry .whl only): snapshot after ~9 minutes
#   bash scripts/probes/grid_call.sh finish    # call 3: wait for the grid's deadline, then its final tarballs
# The jobs, most wanted first (the deadline stops what has not finished): full attention's three seeds at 16K tokens
# (4096 frames) with the mean-summary recipe, `match` at 16K, `order` beyond 8 frames (experiment=order_gpu), full
# attention's seeds 1-2 at 1K (256 frames), then the other missing cells of docs/long_range/h200-mean, short first.
job() { echo "-m experiment=long_range_gpu attention=$1 data.num_frames=$2 final_epochs=1 seed=$3 data.num_workers=$(( $2 >= 4096 ? 4 : $2 >= 1024 ? 3 : 2 ))"; }
JOBS=()
for s in 0 1 2; do JOBS+=("$(job full 4096 $s)"); done
JOBS+=("-m experiment=long_range_gpu attention=full sweep_name=long_range_gpu_match data.tasks=[match] data.num_frames=4096 final_epochs=1 seed=0 data.num_workers=4")
JOBS+=("-m experiment=order_gpu seed=0 data.num_workers=3")
for s in 1 2; do JOBS+=("$(job full 256 $s)"); done
for a in performer strided; do JOBS+=("$(job $a 256 0)"); done
JOBS+=("$(job mamba 1024 0)")
for a in local_global performer strided mamba; do JOBS+=("$(job $a 1024 2)"); done
for s in 1 2; do for a in local_global performer mamba strided; do JOBS+=("$(job $a 256 $s)"); done; done
for a in local_global performer mamba strided; do JOBS+=("$(job $a 4096 1)"); done
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
    # the soak is pinned to GPU 0 and weighs PIN_WEIGHT jobs there; the GPU suite runs alone on GPU 1 first
    # (SUITE_GPU), then the grid's jobs spread over both cards, at most MAX_PER_GPU (weighted) on each
    DEADLINE=$(( $(cat logs/gpu/t0) + GRID_SECONDS )) MAX_JOBS=${MAX_JOBS:-16} MAX_PER_GPU=${MAX_PER_GPU:-9} \
      PIN_WEIGHT=${PIN_WEIGHT:-4} GPU_SUITE=${GPU_SUITE-1} SUITE_GPU=${SUITE_GPU-1} \
      OUT=$PWD/logs/gpu/final JOBLOGS=$PWD/logs/gpu/joblogs LOGS=$PWD/logs/gpu/runs \
      setsid nohup bash scripts/gpu_jobs.sh "@0 -m experiment=soak_gpu attention=mamba attention.kernel=fused data.num_workers=6" "${JOBS[@]}" \
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
