#!/usr/bin/env bash
# Issue 14 device call (2x H200): GPU 1 probes the fp32 FAVOR+ tiles (each in its own process), lists the ones that
# passed as the fp32 tile choices, then runs the whole GPU suite alone with per-test times; GPU 0 runs the attention
# benchmark (layers, cores, external baselines). Everything lands in logs/gpu and $OUT/gpu.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
mkdir -p logs/gpu
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader > logs/gpu/card.txt
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> logs/gpu/card.txt
stamp() { local start=$1; while IFS= read -r line; do printf '%4d %s\n' "$(( $(date +%s) - start ))" "$line"; done; }
(
  export CUDA_VISIBLE_DEVICES=1
  if [ "${FP32_PROBE:-1}" = 1 ]; then
    python3 scripts/tune_favor_kernel.py --dtype float32 --repeats 5 --out logs/gpu/favor_tuning_fp32.json \
      > logs/gpu/favor_fp32.log 2>&1
    python3 scripts/probes/set_fp32_tiles.py logs/gpu/favor_tuning_fp32.json >> logs/gpu/favor_fp32.log 2>&1
  fi
  start=$(date +%s)
  timeout "${SUITE_SECONDS:-420}" python3 -m pytest -m gpu -v -rA --durations=0 -p no:cacheprovider tests 2>&1 \
    | stamp "$start" > logs/gpu/suite.log
  echo "suite wall seconds: $(( $(date +%s) - start ))" >> logs/gpu/suite.log
) &
(
  export CUDA_VISIBLE_DEVICES=0
  start=$(date +%s)
  timeout "${BENCH_SECONDS:-440}" python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 \
    --lengths 4096,16384,65536 --mechanisms full,local,local_global,strided,performer,mamba --set full.kernel=cudnn \
    --set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16 \
    --set local_global.global_tokens=first --set performer.num_features=256 --set strided.stride=4 --cores \
    --skip favor_core,causal_linear_attn_core --out logs/gpu/bench 2>&1 | stamp "$start" > logs/gpu/bench.log
  for cell in ${PROFILES:-performer:16384 mamba:65536 local_global:65536}; do  # what bounds a layer: top kernels
    timeout 60 python3 scripts/bench_attention.py --device cuda --single --mechanism "${cell%%:*}" \
      --length "${cell##*:}" --batch-tokens 131072 --set performer.num_features=256 --set local_global.window_size=512 \
      --set local_global.num_global_tokens=16 --set local_global.global_tokens=first --profile 25 \
      > "logs/gpu/profile-${cell%%:*}-${cell##*:}.txt" 2>&1
  done
) &
wait
mkdir -p "$OUT/gpu" && cp -r logs/gpu/. "$OUT/gpu/"
