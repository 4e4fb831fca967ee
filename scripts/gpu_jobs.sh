#!/bin/bash
# Several `train.py` jobs side by side on one GPU machine, all stopped at one deadline (SIGINT: the job saves
# last.ckpt, is recorded `interrupted` and resumes when the same command runs again), optionally beside the GPU
# test suite. Logs go to LOGS (default logs/gpu/); at the end they are packed into OUT without checkpoints
# (logs.tgz) and with them (ckpts.tgz, to carry into the next call), with each job's console output (joblogs.tgz).
#
#   OUT=/tmp/out LIMIT=540 GPU_SUITE=1 bash scripts/gpu_jobs.sh \
#     "-m experiment=long_range_gpu attention=full data.num_frames=1024 seed=0 data.num_workers=2" \
#     "@0 -m experiment=soak_gpu attention=performer data.num_workers=2"
#
# LIMIT: seconds from now to the deadline every job is stopped at (or DEADLINE: that moment, in epoch seconds).
# MAX_JOBS: jobs running at once (default: all); the others wait for a free slot, in the order given (longest
#   first keeps the machine busy to the end), and one that would get less than MIN_LEFT seconds (default 120) is
#   not started.
# Each job goes to the GPU running the fewest jobs; "@k " before a job's arguments pins it to GPU k (counted as
# PIN_WEIGHT jobs there, default 1: a latency-bound job keeps its card less shared); a job that names
# trainer.devices sees every GPU. MAX_PER_GPU: the most jobs (pinned ones weighted) a GPU takes at once (default:
# no cap). With GPU_SUITE=1, SUITE_GPU=k runs the suite alone on GPU k: no unpinned job goes there until it ends.
# JOBLOGS: where each job's console output goes (default: a new temporary folder).
# LOGS must be a path git ignores: the device tool's next call syncs the working tree and deletes untracked files
# it does not ignore (on 2026-11-30 that removed a running grid's log folder and failed every job).
cd "$(dirname "$0")/.."
OUT=${OUT:-logs/gpu/out}; LOGS=${LOGS:-$PWD/logs/gpu}
DEADLINE=${DEADLINE:-$(( $(date +%s) + ${LIMIT:-540} ))}; MIN_LEFT=${MIN_LEFT:-120}; MAX_JOBS=${MAX_JOBS:-$#}
if [[ "$(realpath -m "$LOGS")" == "$PWD"/* ]] && [ -d .git ] && ! git check-ignore -q "$LOGS"; then
  echo "LOGS=$LOGS is not ignored by git: a later device call would delete it; use a path under logs/" >&2; exit 2
fi
mkdir -p "$OUT" "$LOGS"
# Wheels the GPU image lacks (hydra, omegaconf, wandb: ../shared/tools/device-wheels.sh fills .whl/), if present.
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1 || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 WANDB_MODE=disabled HYDRA_FULL_ERROR=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/card.txt"
JOBLOGS=${JOBLOGS:-$(mktemp -d)}; mkdir -p "$JOBLOGS"
[ -n "$GPU_SUITE" ] && [ -n "$SUITE_GPU" ] && touch "$JOBLOGS/suite_running"
start=$(date +%s)
gpus=$(nvidia-smi -L | wc -l); pids=(); gpu_of=(); weight_of=()

load_of() {  # running jobs on GPU $1, a pinned one counted PIN_WEIGHT times
  local n=0 k
  for k in "${!pids[@]}"; do
    if [ "${gpu_of[k]}" = "$1" ] && kill -0 "${pids[k]}" 2>/dev/null; then n=$(( n + weight_of[k] )); fi
  done
  echo $n
}

run_job() {  # one job: its GPU, its time left, its console log
  local args=$1 visible weight=1 g load least
  if [[ "$args" =~ ^@([0-9]+)\ (.*)$ ]]; then visible=${BASH_REMATCH[1]}; args=${BASH_REMATCH[2]}; weight=${PIN_WEIGHT:-1}
  elif [[ "$args" == *trainer.devices=* ]]; then visible=$(seq -s, 0 $((gpus - 1)))
  else
    while true; do  # the least-loaded GPU open to jobs, once one is under MAX_PER_GPU
      visible="" least=""
      for ((g = 0; g < gpus; g++)); do
        [ -f "$JOBLOGS/suite_running" ] && [ "$g" = "$SUITE_GPU" ] && continue
        load=$(load_of $g)
        (( load >= ${MAX_PER_GPU:-1000000} )) && continue
        if [ -z "$visible" ] || (( load < least )); then visible=$g least=$load; fi
      done
      [ -n "$visible" ] && break
      wait -n 2>/dev/null || sleep 5
    done
  fi
  local name left
  name=$(echo "$args" | tr ' =/,' '_-__' | cut -c1-120)
  left=$(( DEADLINE - $(date +%s) ))
  if (( left < MIN_LEFT )); then echo "[gpu_jobs] not started (${left} s left): $args" >> "$JOBLOGS/not_started.txt"; return; fi
  # shellcheck disable=SC2086
  (CUDA_VISIBLE_DEVICES=$visible timeout -s INT "$left" python3 train.py $args paths.log_dir="$LOGS"
   echo "[gpu_jobs] exit status $? after $(( $(date +%s) - start )) s") > "$JOBLOGS/$name.txt" 2>&1 &
  pids+=($!); gpu_of+=("$visible"); weight_of+=("$weight")
}

(
  for args in "$@"; do
    while (( $(jobs -rp | wc -l) >= MAX_JOBS )); do wait -n; done
    run_job "$args"
  done
  wait
) &
scheduler=$!
if [ -n "$GPU_SUITE" ]; then
  # the whole GPU suite, timed (the jobs beside it share the card, so this is an upper bound)
  s=$(date +%s)
  ${SUITE_GPU:+env CUDA_VISIBLE_DEVICES=$SUITE_GPU} timeout -s INT $(( DEADLINE - s - 20 )) python3 -m pytest -m gpu -q -rA -p no:cacheprovider tests > "$OUT/gpu_suite.txt" 2>&1
  echo "exit $? after $(( $(date +%s) - s )) s (${SUITE_GPU:+alone on GPU $SUITE_GPU; }jobs in the run: $#)" >> "$OUT/gpu_suite.txt"
  rm -f "$JOBLOGS/suite_running"
  tail -5 "$OUT/gpu_suite.txt"
fi
wait "$scheduler"
echo "jobs done after $(( $(date +%s) - start )) s"
grep -h "\[gpu_jobs\] exit status" "$JOBLOGS"/*.txt | sort | uniq -c
cat "$JOBLOGS/not_started.txt" 2>/dev/null
# a job that died without a word: the kernel's log says whether the OOM killer took it (where it may be read)
(dmesg 2>/dev/null | grep -iE "killed process|out of memory" | tail -20) > "$JOBLOGS/dmesg-oom.txt"
tar czf "$OUT/logs.tgz" --exclude='*.ckpt' --exclude='tensorboard' -C "$LOGS" --exclude=out .
# checkpoints small enough to come back from the machine (a file of $OUT may hold 16 MiB)
(cd "$LOGS" && find . -path ./out -prune -o -name '*.ckpt' -size -15M -print) | tar czf "$OUT/ckpts.tgz" -C "$LOGS" -T -
tar czf "$OUT/joblogs.tgz" -C "$JOBLOGS" .
ls -la "$OUT"
