"""Command line of the attention benchmark (``scripts/bench_attention.py``, ``python -m hierarchicalvlm.benchmark``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .cases import case_catalogue
from .measure import RESULT_PREFIX, CellResult, profile_cell, run_benchmark, run_cell, slugify
from .report import read_report, write_data, write_report
from .settings import (
    DEFAULT_CONF_DIR,
    DEFAULT_RESULTS_ROOT,
    DEVICE_DEFAULTS,
    ISOLATIONS,
    PRECISIONS,
    BenchSettings,
    available_mechanisms,
    knob_summary,
    parse_override,
    validate_settings,
)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_attention.py",
        description="Forward+backward time and peak memory of every attention mechanism vs full attention, over "
        "sequence length. Writes results.csv, results.md, time_vs_length.png, memory_vs_length.png, meta.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--device", choices=tuple(DEVICE_DEFAULTS), default="cpu")
    parser.add_argument("--lengths", type=_int_list, help="comma-separated; default CPU 512..8192, GPU 1K..64K")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--batch-tokens", type=int,
                        help="tokens per step (batch = tokens // length); default CPU 16384, GPU 131072")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="bf16 = bf16 weights+inputs; bf16-mixed = autocast. default CPU fp32, GPU bf16-mixed")
    parser.add_argument("--warmup", type=int, help="untimed calls first (>= 1); default CPU 1, GPU 3")
    parser.add_argument("--repeats", type=int, help="timed calls, median reported; default CPU 5, GPU 10")
    parser.add_argument("--mechanisms", default="all", help="comma-separated conf/attention names, or 'all'")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="MECH.KEY=VALUE",
                        help="override a mechanism knob, e.g. local_global.window_size=512 (repeatable)")
    parser.add_argument("--cores", action=argparse.BooleanOptionalAction, default=None,
                        help="also time our attention cores without projections; default on for GPU, off for CPU")
    parser.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                        help="external GPU baselines (FlexAttention masks, fla, mamba-ssm) when importable")
    parser.add_argument("--mamba-ssm-src", help="mamba_ssm source folder for the mamba-ssm Triton scan baseline "
                        "(default: the installed package, pip install -e '.[gpu]')")
    parser.add_argument("--skip", default="", help="comma-separated case names to leave out (names as --list prints)")
    parser.add_argument("--fla-autotune-configs", type=int, default=4,
                        help="autotune flash-linear-attention's kernels over at most this many configs each (0 = all; "
                        "all of them took minutes per length on an H200)")
    parser.add_argument("--compile-layers", action="store_true",
                        help="run every layer row (ours, full and the FlexAttention baselines alike) under "
                        "torch.compile(dynamic=False), as a compiled training run does; cores stay eager")
    parser.add_argument("--isolation", choices=ISOLATIONS,
                        help="process: each cell in a fresh forked process (host memory); subprocess: each cell via "
                        "--single (slower); none: in-process. default CPU process, GPU none")
    parser.add_argument("--cell-timeout", type=float, default=1800.0, help="seconds per isolated cell")
    parser.add_argument("--skip-slower-than", type=float, metavar="MS",
                        help="after a cell slower than MS, skip the longer lengths of that row")
    parser.add_argument("--out", type=Path, help="output folder; default docs/benchmarks/<device-name-slug>")
    parser.add_argument("--conf-dir", default=str(DEFAULT_CONF_DIR), help="folder of the attention YAMLs")
    parser.add_argument("--threads", type=int, help="torch CPU threads per cell (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="print the runnable cases and knobs, then exit")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite results.md and the plots from the results.csv and meta.json in --out")
    parser.add_argument("--single", action="store_true", help="run one cell (--mechanism, --length) and print its JSON")
    parser.add_argument("--mechanism", help="the case of --single (any name --list prints)")
    parser.add_argument("--length", type=int, help="the length of --single")
    parser.add_argument("--profile", type=int, default=0, metavar="K",
                        help="with --single: also print the K kernels that take the most device time in one warm step")
    return parser


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    """Parsed arguments -> settings, with the per-device defaults filled in."""
    defaults = DEVICE_DEFAULTS[args.device]
    overrides: dict[str, dict[str, Any]] = {}
    for text in args.sets:
        name, key, value = parse_override(text)
        overrides.setdefault(name, {})[key] = value
    mechanisms = (tuple(available_mechanisms(args.conf_dir)) if args.mechanisms.strip() == "all"
                  else tuple(m.strip() for m in args.mechanisms.split(",") if m.strip()))
    return BenchSettings(
        device=args.device,
        lengths=defaults["lengths"] if args.lengths is None else args.lengths,
        dim=args.dim,
        heads=args.heads,
        batch_tokens=defaults["batch_tokens"] if args.batch_tokens is None else args.batch_tokens,
        precision=args.precision or defaults["precision"],
        warmup=defaults["warmup"] if args.warmup is None else args.warmup,
        repeats=defaults["repeats"] if args.repeats is None else args.repeats,
        mechanisms=mechanisms,
        overrides=overrides,
        cores=defaults["cores"] if args.cores is None else args.cores,
        baselines=args.baselines,
        isolation=args.isolation or defaults["isolation"],
        conf_dir=str(args.conf_dir),
        mamba_ssm_src=args.mamba_ssm_src,
        fla_autotune_configs=args.fla_autotune_configs,
        skip=tuple(name.strip() for name in args.skip.split(",") if name.strip()),
        cell_timeout=args.cell_timeout,
        skip_slower_than_ms=args.skip_slower_than,
        threads=args.threads,
        seed=args.seed,
        compile_layers=args.compile_layers,
    )


def _out_dir(out: Optional[Path], meta: dict) -> Path:
    """``--out``, or ``docs/benchmarks/<device name>``."""
    return Path(out) if out else DEFAULT_RESULTS_ROOT / slugify(meta["device"])


def _single(settings: BenchSettings, name: Optional[str], length: Optional[int]) -> CellResult:
    """``--single``: one cell in this (fresh) process."""
    if not name or not length:
        raise ValueError("--single needs --mechanism NAME and --length N")
    catalogue = case_catalogue(settings)
    if name not in catalogue:
        raise ValueError(f"unknown mechanism {name!r}; choose from: {', '.join(catalogue)}")
    validate_settings(settings, build=False)
    # This process imported the package and nothing else ran: its peak RSS growth is the cell's host memory.
    return run_cell(catalogue[name], settings, length, fresh_process=True)


def _print_list(settings: BenchSettings) -> None:
    print("mechanisms (conf/attention) and their knobs:")
    for name in available_mechanisms(settings.conf_dir):
        print(f"  {name}: {knob_summary(name, settings)}")
    print("all cases on this device:", ", ".join(case_catalogue(settings)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark (or ``--list`` / ``--single``); exit status 2 with a one-line message on bad arguments."""
    args = build_parser().parse_args(argv)
    try:
        if args.render_only:
            if args.out is None:
                raise ValueError("--render-only needs --out DIR (a folder with results.csv and meta.json)")
            print(write_report(read_report(args.out), args.out, data=False))
            return 0
        settings = settings_from_args(args)
        if args.list:
            _print_list(settings)
            return 0
        if args.single:
            result = _single(settings, args.mechanism, args.length)
            print(RESULT_PREFIX + json.dumps(dataclasses.asdict(result)))
            if args.profile:
                print(profile_cell(case_catalogue(settings)[args.mechanism], settings, args.length, args.profile))
            return 0
        command = shlex.join(["python", "scripts/bench_attention.py", *(sys.argv[1:] if argv is None else argv)])
        # every cell's result is on disk at once: a run cut off by a time limit renders with --render-only
        report = run_benchmark(settings, log=lambda line: print(line, file=sys.stderr, flush=True), command=command,
                               progress=lambda partial: write_data(partial, _out_dir(args.out, partial.meta)))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = _out_dir(args.out, report.meta)
    markdown = write_report(report, out_dir)
    print(f"wrote {out_dir}/: results.csv results.md time_vs_length.png memory_vs_length.png meta.json",
          file=sys.stderr)
    print(markdown)
    return 0
