#!/usr/bin/env bash
# Issue 14, 2026-12-02 eighth session, call D on one H200 (the 190 s of device time left): the strided search of
# speed_call31.sh alone, which call C's limit had cut (docs/benchmarks/h200/max_seq_len_strided_2026-12-02.json).
set -u
source scripts/probes/device_setup.sh
cp logs/gpu/card.txt "$OUT/"
timeout 170 python3 scripts/max_seq_len.py experiment=long_seq_ablation_gpu model.net.activation_checkpointing=true \
    data.batch_size=1 --tolerance 0.9 --memory-cap-gb 80 --attention strided --start-frames 4096 --max-frames 32768 \
    --out "$OUT/max_seq_len_strided.json" > "$OUT/max_seq_len_strided.log" 2>&1
echo "exit $?"
