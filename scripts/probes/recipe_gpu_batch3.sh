#!/bin/bash
# Recipe probes side by side on one GPU (16 cores), logs to $OUT; docs/EMBEDDED_TASK.md has the results.
#   OUT=logs/recipe_probe bash scripts/probes/recipe_gpu_batch3.sh
OUT=${OUT:-logs/recipe_probe}; mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
P="python3 scripts/recipe_probe.py --steps 2000 --every 250"
run() { n=$1; shift; $P --name $n "$@" > $OUT/$n.log 2>&1 & }
run n32_l1x2_s0 --frames 32 --l1 2
run n32_l1x2_s1 --frames 32 --l1 2 --seed 1
run n32_l1x2_s2 --frames 32 --l1 2 --seed 2
run n32_l1x3_lr1 --frames 32 --l1 3 --lr 1e-3
run n32_l1x2_bs64 --frames 32 --l1 2 --bs 64
run n32_l1x2_d128 --frames 32 --l1 2 --dim 128
run n32_l1x2_h2 --frames 32 --l1 2 --heads 2
run n32_l1x2_mlp4 --frames 32 --l1 2 --mlp 4
run m32_l1x3 --task match --frames 32 --l1 3
run n32_l1x2_rec --frames 32 --l1 2 --lr 1e-3 --wd 0 --warmup 200
run ncur256_l1x3 --frames 256 --l1 3 --curriculum 8:250,16:250,32:250,64:250,128:250,256:500 --eval_frames 256
run c32_l1x3 --task count --frames 32 --l1 3
wait
grep -h FINAL $OUT/*.log | sed "s/ {.*//"
