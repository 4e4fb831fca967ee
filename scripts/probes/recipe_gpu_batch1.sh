#!/bin/bash
# Recipe probes side by side on one GPU (16 cores), logs to $OUT; docs/EMBEDDED_TASK.md has the results.
#   OUT=logs/recipe_probe bash scripts/probes/recipe_gpu_batch1.sh
OUT=${OUT:-logs/recipe_probe}; mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
P="python3 scripts/recipe_probe.py --steps 1200 --every 150"
$P --name n8 --frames 8 > $OUT/n8.log 2>&1 &
$P --name n32 --frames 32 > $OUT/n32.log 2>&1 &
$P --name n32cw0 --frames 32 --cw 0 > $OUT/n32cw0.log 2>&1 &
$P --name n32rec --frames 32 --lr 1e-3 --wd 0 --warmup 200 > $OUT/n32rec.log 2>&1 &
$P --name n32p4 --frames 32 --patch 4 > $OUT/n32p4.log 2>&1 &
$P --name n32d128 --frames 32 --dim 128 > $OUT/n32d128.log 2>&1 &
$P --name n32l1x2 --frames 32 --l1 2 > $OUT/n32l1x2.log 2>&1 &
$P --name n32h2 --frames 32 --heads 2 > $OUT/n32h2.log 2>&1 &
$P --name n32lr5e4 --frames 32 --lr 5e-4 --warmup 100 > $OUT/n32lr5e4.log 2>&1 &
$P --name m32 --task match --frames 32 > $OUT/m32.log 2>&1 &
$P --name m32cw0 --task match --frames 32 --cw 0 > $OUT/m32cw0.log 2>&1 &
$P --name n32l2x4 --frames 32 --l2 4 > $OUT/n32l2x4.log 2>&1 &
$P --name n32mem --frames 32 --memory 1 > $OUT/n32mem.log 2>&1 &
$P --name ncur --frames 128 --curriculum 8:200,16:200,32:200,64:200,128:400 --eval_frames 128 > $OUT/ncur.log 2>&1 &
wait
grep -h FINAL $OUT/*.log
