#!/bin/bash
# The long-range needle grid (experiment=long_range_gpu): every mechanism x lengths x seeds as separate jobs,
# side by side on every GPU of the machine through scripts/gpu_jobs.sh (longest first, MAX_JOBS at once), all
# stopped at one deadline (interrupted jobs resume when this runs again). Extra jobs given as arguments run first
# (e.g. "@0 -m experiment=soak_gpu attention=mamba"). Afterwards:
#   python scripts/ablation_report.py gpulogs/long_range/multiruns/long_range_gpu --out docs/long_range/<name>
#
#   LIMIT=1400 MAX_JOBS=18 bash scripts/long_range_gpu.sh                           # the whole grid
#   LENGTHS="256 1024" SEEDS="0" MECHANISMS="full local" bash scripts/long_range_gpu.sh  # a part of it
#
# LENGTHS are frames (4 level-2 tokens each: 256 = 1K tokens, 1024 = 4K, 4096 = 16K); SEEDS_LONGEST: the seeds of
# the longest length (one run there costs as much as ~16 at 1K); FINAL_EPOCHS: epochs at the full length after the
# curriculum (1 keeps a 16K job inside 10 minutes of a shared H200). Other variables: scripts/gpu_jobs.sh.
cd "$(dirname "$0")/.."
LENGTHS=${LENGTHS:-"4096 1024 256"}; SEEDS=${SEEDS:-"0 1 2"}; SEEDS_LONGEST=${SEEDS_LONGEST:-$SEEDS}
MECHANISMS=${MECHANISMS:-"full local local_global performer mamba strided"}; FINAL_EPOCHS=${FINAL_EPOCHS:-1}
longest=$(printf '%s\n' $LENGTHS | sort -n | tail -1)
grid=()
for frames in $(printf '%s\n' $LENGTHS | sort -rn); do          # longest first
  seeds=$SEEDS; [ "$frames" = "$longest" ] && seeds=$SEEDS_LONGEST
  workers=$(( frames >= 4096 ? 4 : frames >= 1024 ? 3 : 2 ))
  for seed in $seeds; do
    for attention in $MECHANISMS; do
      grid+=("-m experiment=long_range_gpu attention=$attention data.num_frames=$frames final_epochs=$FINAL_EPOCHS seed=$seed data.num_workers=$workers")
    done
  done
done
exec bash scripts/gpu_jobs.sh "$@" "${grid[@]}"
