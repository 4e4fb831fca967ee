#!/usr/bin/env bash
# Issue 14 device call (2x H200): GPU 1 runs the whole GPU suite alone, then 64K-token training jobs; GPU 0 the
# attention benchmark, the causal mamba layer and a mamba profile, then 64K-token training jobs. Every job stops by
# the call's deadline. Results: $OUT/gpu.tgz (logs/gpu), plus the suite and benchmark logs on their own.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 WANDB_MODE=disabled
deadline=$(( $(date +%s) + ${CALL_SECONDS:-560} ))
left() { echo $(( deadline - $(date +%s) )); }
mkdir -p logs/gpu/train64k
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader > logs/gpu/card.txt
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> logs/gpu/card.txt
TRAIN="experiment=long_seq_ablation_gpu data.num_frames=1024 trainer.max_steps=25 data.num_train=100
 trainer.limit_val_batches=2 test=false callbacks.model_checkpoint=null callbacks.last_checkpoint=null"
train() {  # train <folder> <overrides...>: one 64K-token job, until the deadline at the latest
  local name=$1; shift
  timeout "$(left)" python3 train.py -m $TRAIN "$@" hydra.sweep.dir="logs/gpu/train64k/$name" \
    > "logs/gpu/train64k-$name.log" 2>&1
}
(
  export CUDA_VISIBLE_DEVICES=1
  start=$(date +%s)
  timeout 330 python3 -m pytest -m gpu -v -rA --durations=0 -p no:cacheprovider tests > logs/gpu/suite.log 2>&1
  echo "suite wall seconds: $(( $(date +%s) - start ))" >> logs/gpu/suite.log
  train full attention=full
  train strided attention=strided
  train mamba attention=mamba
) &
(
  export CUDA_VISIBLE_DEVICES=0
  timeout 330 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 \
    --lengths 4096,16384,65536 --mechanisms full,local,local_global,strided,performer,mamba --set full.kernel=cudnn \
    --set local.window_size=512 --set local_global.window_size=512 --set local_global.num_global_tokens=16 \
    --set local_global.global_tokens=first --set performer.num_features=256 --set strided.stride=4 --cores \
    --skip favor_core,causal_linear_attn_core --out logs/gpu/bench > logs/gpu/bench.log 2>&1
  for causal in true false; do  # one scan (causal) or two (bidirectional, the default), with the top kernels
    timeout 100 python3 scripts/bench_attention.py --device cuda --single --mechanism mamba --length 65536 \
      --batch-tokens 131072 --set mamba.causal=$causal --profile 25 > "logs/gpu/profile-mamba-causal-$causal.txt" 2>&1
  done
  train local_global attention=local_global attention.global_tokens=last
  train performer attention=performer
) &
wait
cp logs/gpu/suite.log logs/gpu/bench.log "$OUT/" 2>/dev/null
tar czf "$OUT/gpu.tgz" logs/gpu
