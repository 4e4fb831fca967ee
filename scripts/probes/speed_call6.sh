#!/usr/bin/env bash
# Issue 14, 2026-12-01, the final code (2x H200). GPU 0: the benchmark command, eager layers, every row and
# every external baseline, one complete run. GPU 1: the whole GPU suite, then the longest trainable video per
# mechanism (scripts/max_seq_len.py, an 80 GiB cap). Small files only, one tarball.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 WANDB_MODE=disabled
mkdir -p logs/gpu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > logs/gpu/card.txt 2>&1
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> logs/gpu/card.txt 2>&1
(
  export CUDA_VISIBLE_DEVICES=0
  date -u +"bench start %H:%M:%S" > logs/gpu/times0.txt
  timeout "${BENCH_SECONDS:-520}" python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 \
      --lengths 4096,16384,65536 --mechanisms full,local,local_global,strided,performer,mamba --set full.kernel=cudnn \
      --set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16 \
      --set local_global.global_tokens=first --set performer.num_features=256 --set strided.stride=4 --cores \
      --skip favor_core,causal_linear_attn_core --out logs/gpu/bench-eager > logs/gpu/bench-eager.log 2>&1
  date -u +"bench end %H:%M:%S" >> logs/gpu/times0.txt
) &
(
  export CUDA_VISIBLE_DEVICES=1
  date -u +"suite start %H:%M:%S" > logs/gpu/times1.txt
  timeout "${TEST_SECONDS:-300}" python3 -m pytest -m gpu -v -rA --durations=0 -p no:cacheprovider tests \
      > logs/gpu/suite.log 2>&1; echo "exit $?" >> logs/gpu/suite.log
  date -u +"max_seq_len start %H:%M:%S" >> logs/gpu/times1.txt
  timeout "${MAXLEN_SECONDS:-220}" python3 scripts/max_seq_len.py experiment=long_seq_ablation_gpu \
      model.net.activation_checkpointing=true data.batch_size=1 --attention local_global,performer,mamba,strided \
      --start-frames 16384 --max-frames 32768 --tolerance 0.9 --memory-cap-gb 80 --out logs/gpu/max_seq_len.json \
      > logs/gpu/max_seq_len.log 2>&1
  date -u +"gpu1 end %H:%M:%S" >> logs/gpu/times1.txt
) &
wait
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.md' \
  -o -name '*.png' \) -size -3M | tar czf "$OUT/t.tgz" -T -
