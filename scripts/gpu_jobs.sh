#!/bin/bash
# Several `train.py` jobs side by side on one GPU machine, each stopped after LIMIT seconds (SIGINT: the job saves
# last.ckpt, is recorded `interrupted` and resumes when the same command runs again), optionally beside the GPU
# test suite. Logs go to LOGS (default gpulogs/); at the end they are packed into OUT without checkpoints
# (logs.tgz) and with them (ckpts.tgz, to carry into the next call), with each job's console output (joblogs.tgz).
#
#   OUT=/tmp/out LIMIT=540 GPU_SUITE=1 bash scripts/gpu_jobs.sh \
#     "-m experiment=long_range_gpu attention=full data.num_frames=1024 seed=0 data.num_workers=2" \
#     "-m experiment=soak_gpu attention=performer data.num_workers=2"
cd "$(dirname "$0")/.."
OUT=${OUT:-gpulogs/out}; LOGS=${LOGS:-$PWD/gpulogs}; LIMIT=${LIMIT:-540}
mkdir -p "$OUT" "$LOGS"
# Wheels the GPU image lacks (hydra, omegaconf, wandb: ../shared/tools/device-wheels.sh fills .whl/), if present.
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1 || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 WANDB_MODE=disabled HYDRA_FULL_ERROR=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/card.txt"
JOBLOGS=$(mktemp -d)
start=$(date +%s)
# Jobs are dealt to the machine's GPUs in turn (job i on GPU i mod count); a job that names trainer.devices
# sees every GPU.
gpus=$(nvidia-smi -L | wc -l); i=0
for args in "$@"; do
  name=$(echo "$args" | tr ' =/,' '_-__' | cut -c1-120)
  if [[ "$args" == *trainer.devices=* ]]; then visible=$(seq -s, 0 $((gpus - 1))); else visible=$((i % gpus)); i=$((i + 1)); fi
  # shellcheck disable=SC2086
  (CUDA_VISIBLE_DEVICES=$visible timeout -s INT "$LIMIT" python3 train.py $args paths.log_dir="$LOGS"
   echo "[gpu_jobs] exit status $? after $(( $(date +%s) - start )) s") > "$JOBLOGS/$name.txt" 2>&1 &
done
if [ -n "$GPU_SUITE" ]; then
  # the whole GPU suite, timed (the jobs beside it share the card, so this is an upper bound)
  s=$(date +%s)
  timeout -s INT $((LIMIT - 20)) python3 -m pytest -m gpu -q -rA -p no:cacheprovider tests > "$OUT/gpu_suite.txt" 2>&1
  echo "exit $? after $(( $(date +%s) - s )) s (jobs side by side: $#)" >> "$OUT/gpu_suite.txt"
  tail -5 "$OUT/gpu_suite.txt"
fi
wait
echo "jobs done after $(( $(date +%s) - start )) s"
grep -h "\[gpu_jobs\] exit status" "$JOBLOGS"/*.txt | sort | uniq -c
# a job that died without a word: the kernel's log says whether the OOM killer took it (where it may be read)
(dmesg 2>/dev/null | grep -iE "killed process|out of memory" | tail -20) > "$JOBLOGS/dmesg-oom.txt"
tar czf "$OUT/logs.tgz" --exclude='*.ckpt' --exclude='tensorboard' -C "$LOGS" --exclude=out .
# checkpoints small enough to come back from the machine (a file of $OUT may hold 16 MiB)
(cd "$LOGS" && find . -path ./out -prune -o -name '*.ckpt' -size -15M -print) | tar czf "$OUT/ckpts.tgz" -C "$LOGS" -T -
tar czf "$OUT/joblogs.tgz" -C "$JOBLOGS" .
ls -la "$OUT"
