"""The longest video each attention mechanism can train on (one optimisation step) within memory.

For every mechanism: double data.num_frames from --start-frames until a step fails, then bisect between
the last fit and the first failure. A step fails on a CUDA out-of-memory error, or when its peak memory
exceeds --memory-cap-gb (GPU: allocated memory; CPU: the process's peak resident set, required there).
Any Hydra overrides pick the model, data and batch size, exactly as for train.py.

    python scripts/max_seq_len.py experiment=long_seq_ablation_gpu \\
        --out logs/ablation/multiruns/long_seq_ablation_gpu/max_seq_len.json
    python scripts/max_seq_len.py --attention full,performer --memory-cap-gb 2 data.batch_size=2   # CPU

The JSON it writes next to a sweep's jobs (max_seq_len.json) is shown by scripts/ablation_report.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from hierarchicalvlm.ablation.max_len import GIB, compose_train_config, search_mechanisms, write_max_len

ROOT = Path(__file__).resolve().parents[1]
MECHANISMS = "full,local_global,performer,mamba,strided"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=long_seq_ablation_gpu")
    parser.add_argument("--attention", default=MECHANISMS, help=f"comma-separated mechanisms (default: {MECHANISMS})")
    parser.add_argument("--memory-cap-gb", type=float, default=None,
                        help="largest allowed peak memory in GiB (required on CPU: host RSS of this process)")
    parser.add_argument("--start-frames", type=int, default=8)
    parser.add_argument("--max-frames", type=int, default=65536, help="stop doubling here (default: 65536)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="stop bisecting within this relative gap")
    parser.add_argument("--multiple-of", type=int, default=1, help="only try frame counts that are multiples of this")
    parser.add_argument("--out", type=Path, default=Path("logs/max_seq_len.json"), help="JSON output path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.memory_cap_gb is None and not torch.cuda.is_available():
        print("error: without a GPU there is no out-of-memory error to stop at; pass --memory-cap-gb "
              "(peak host RSS of this process, e.g. --memory-cap-gb 4)", file=sys.stderr)
        return 2
    attentions = [a.strip() for a in args.attention.split(",") if a.strip()]
    cap = int(args.memory_cap_gb * GIB) if args.memory_cap_gb is not None else None

    def cfg_for(attention: str):
        return compose_train_config(ROOT / "conf", [*args.overrides, f"attention={attention}"], Path.cwd())

    def save(document: dict) -> None:
        write_max_len({**document, "overrides": args.overrides}, args.out)

    try:
        # saved after every trial too: a search cut off by a time limit keeps the trials it ran
        document = search_mechanisms(
            cfg_for, attentions, cap, progress=save, start_frames=args.start_frames, max_frames=args.max_frames,
            tolerance=args.tolerance, multiple_of=args.multiple_of,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    save(document)
    for attention, result in document["results"].items():
        print(f"{attention:>14}: {result['max_frames']} frames ({result['max_seq_len']} tokens); "
              f"first failure {result['first_failure_frames']}: {result['reason']}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
