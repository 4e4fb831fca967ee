"""Tables and plots of a sweep: report.md, jobs.csv and plots/*.png + .svg from every job's summary.json.

    python scripts/ablation_report.py logs/ablation/multiruns/long_seq_ablation
    python scripts/ablation_report.py --latest            # the newest folder under logs/*/multiruns
    make report [SWEEP=path]

The logic lives in hierarchicalvlm.ablation.report; see docs/ABLATIONS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hierarchicalvlm.ablation.report import latest_sweep, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("sweep_dir", nargs="?", type=Path, help="the sweep folder (hydra.sweep.dir)")
    where.add_argument("--latest", action="store_true", help="use the newest folder under <log-dir>/*/multiruns")
    parser.add_argument("--log-dir", type=Path, default=Path("logs"), help="where --latest looks (default: logs)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the sweep folder)")
    parser.add_argument("--max-len", type=Path, default=None,
                        help="max_seq_len.json to show (default: <sweep_dir>/max_seq_len.json if present)")
    parser.add_argument("--command", default=None,
                        help="the command(s) that made the sweep, shown instead of the one reconstructed from the "
                             "job folders (for a sweep whose jobs came from several commands)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sweep_dir = latest_sweep(args.log_dir) if args.latest else args.sweep_dir
        files = write_report(sweep_dir, args.out, args.max_len, args.command)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {files.report}\njobs:   {files.jobs_csv}")
    for plot in files.plots:
        print(f"plot:   {plot} (+ .svg)")
    for warning in files.warnings:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
