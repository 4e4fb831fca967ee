#!/usr/bin/env bash
# Issue 14, 2026-12-01, the measuring call (2x H200). GPU 0: the benchmark command, eager layers, every row
# and every external baseline, then the layers under torch.compile (part A: full, performer, mamba). GPU 1: the whole
# GPU suite, then the layers under torch.compile (part B: local, local_global and the FlexAttention baseline).
# Small files only, one tarball.
set -u
source scripts/probes/device_setup.sh
BENCH="python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --lengths 4096,16384,65536"
KNOBS="--set full.kernel=cudnn --set local.window_size=512 --set local_global.window_size=512
 --set local_global.num_global_tokens=16 --set local_global.global_tokens=first --set performer.num_features=256
 --set strided.stride=4"
CORE_BASELINES=fla_chunk_linear_attn,mamba_ssm_chunk_scan
(
  export CUDA_VISIBLE_DEVICES=0
  date -u +"eager start %H:%M:%S" > logs/gpu/times.txt
  timeout "${EAGER_SECONDS:-330}" $BENCH --mechanisms full,local,local_global,strided,performer,mamba $KNOBS --cores \
      --skip favor_core,causal_linear_attn_core --out logs/gpu/bench-eager > logs/gpu/bench-eager.log 2>&1
  date -u +"compiled A start %H:%M:%S" >> logs/gpu/times.txt
  timeout "${COMPILED_SECONDS:-220}" $BENCH --mechanisms full,performer,mamba $KNOBS --no-cores --compile-layers \
      --skip flex_local_global,flex_strided,$CORE_BASELINES --out logs/gpu/bench-compiled-a > logs/gpu/bench-compiled-a.log 2>&1
  date -u +"gpu0 end %H:%M:%S" >> logs/gpu/times.txt
) &
(
  export CUDA_VISIBLE_DEVICES=1
  timeout "${TEST_SECONDS:-300}" python3 -m pytest -m gpu -v -rA --durations=0 -p no:cacheprovider tests \
      > logs/gpu/suite.log 2>&1; echo "exit $?" >> logs/gpu/suite.log
  timeout "${COMPILED_SECONDS:-220}" $BENCH --mechanisms local,local_global $KNOBS --no-cores --compile-layers \
      --skip flex_strided,$CORE_BASELINES --out logs/gpu/bench-compiled-b > logs/gpu/bench-compiled-b.log 2>&1
) &
wait
cd logs/gpu && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.md' \
  -o -name '*.png' \) -size -3M | tar czf "$OUT/t.tgz" -T -
