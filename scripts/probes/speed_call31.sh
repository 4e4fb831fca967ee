#!/usr/bin/env bash
# Issue 14, 2026-12-02 eighth session, call C on one H200 (in place of speed_call30.sh, with the time left): call A's
# complete run was cut by its limit before the mamba-ssm baseline row (a local cell took 168 s to compile), so that
# row runs here with its pair (ssd_core) and the full rows, then scripts/max_seq_len.py as in speed_call30.sh.
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
timeout 120 python3 scripts/bench_attention.py --device cuda --batch-tokens 131072 --lengths 4096,16384,65536 \
    --mechanisms full --set full.kernel=cudnn --cores \
    --skip favor_core,causal_linear_attn_core,fused_favor_core,flex_local_global,flex_strided,fla_chunk_linear_attn \
    --out logs/gpu/bench-mamba-ssm > "$OUT/bench-mamba-ssm.log" 2>&1
echo "bench exit $? at $(date -u +%H:%M:%S)" >> "$OUT/times.txt"
cp logs/gpu/bench-mamba-ssm/{results.csv,results.md,meta.json} "$OUT/" 2>/dev/null
COMMON="experiment=long_seq_ablation_gpu model.net.activation_checkpointing=true data.batch_size=1 --tolerance 0.9
 --memory-cap-gb 80"
timeout 250 python3 scripts/max_seq_len.py $COMMON --attention local_global,performer,mamba --start-frames 16384 \
    --max-frames 32768 --out "$OUT/max_seq_len.json" > "$OUT/max_seq_len.log" 2>&1
echo "max_seq_len exit $? at $(date -u +%H:%M:%S)" >> "$OUT/times.txt"
timeout 120 python3 scripts/max_seq_len.py $COMMON --attention strided --start-frames 4096 --max-frames 32768 \
    --out "$OUT/max_seq_len_strided.json" > "$OUT/max_seq_len_strided.log" 2>&1
echo "strided exit $? at $(date -u +%H:%M:%S)" >> "$OUT/times.txt"
exit 0
