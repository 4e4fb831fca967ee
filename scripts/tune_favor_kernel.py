#!/usr/bin/env python
"""Time the fused FAVOR+ kernel's tile shapes and operand precisions; check each against the PyTorch path.

Each configuration (``FavorKernelConfig``: block_n, block_f, num_warps, bf16_products) first runs a small problem
in ``--dtype`` (bfloat16 or float32) against ``favor_attention`` in float64 (forward and gradients; a config whose error exceeds bf16 rounding
is marked ``wrong`` and never the pick), then forward+backward of q, k, v ``(batch, heads, length, head_dim)`` at
131,072 tokens, as ``scripts/bench_attention.py``'s ``fused_favor_core`` row. Configs that do not compile (shared
memory) are reported as such. Prints a table and the fastest correct config; ``--out`` writes JSON.

    python scripts/tune_favor_kernel.py --out docs/benchmarks/h200/favor_tuning.json      # on a GPU
    python scripts/tune_favor_kernel.py --profile                                         # + per-kernel times
    python scripts/tune_favor_kernel.py --dtype float32 --out docs/benchmarks/h200/favor_tuning_fp32.json
    python scripts/tune_favor_kernel.py --per-kernel --out docs/benchmarks/h200/favor_tuning_per_kernel.json

``--per-kernel`` instead times each of the five kernels under every launch shape (:data:`LAUNCHES`) from profiles
of whole forward+backward steps, picks each kernel's fastest shape, and checks and times that combination against
the current default. Its kernels are compiled first by
parallel processes (Triton's disk cache keeps them), so that the timing process compiles nothing.

Every configuration runs in a process of its own: one that faults on the device (an illegal memory access leaves
the CUDA context unusable) is reported as failed without taking the others down.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Optional

import torch

from hierarchicalvlm.attention.ops import favor_triton
from hierarchicalvlm.attention.ops.favor import favor_attention, orthogonal_gaussian_projection
from hierarchicalvlm.benchmark.cases import make_step
from hierarchicalvlm.benchmark.measure import device_name, time_calls

BLOCK_N = (64, 128)
BLOCK_F = (64, 128)
NUM_WARPS = (4, 8)


# --per-kernel: launch shapes tried for every kernel (block_n, block_f, num_warps, num_stages)
LAUNCHES = list(itertools.product((64, 128), (64, 128), (4, 8), (2, 3)))
KERNEL_NAMES = {name: f"_{name}" for name in favor_triton.KERNELS} | {"key_state": "_key_state_fwd"}


DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
# (output, gradient) relative error within which a config counts as correct, per input precision
TOLERANCES = {"bfloat16": (1e-2, 3e-2), "float32": (1e-4, 1e-3)}


def candidate_configs(dtype: str) -> list[favor_triton.FavorKernelConfig]:
    """bf16: every tile shape with bf16 products, plus the 64 x 64 x 4-warp tile with TF32 products (the first
    kernel). fp32 (IEEE products, twice the shared memory): 32- to 128-position tiles of 64 features, and 64 x 128."""
    if dtype == "float32":
        tiles = [*itertools.product((32,) + BLOCK_N, (64,), NUM_WARPS), (64, 128, 4)]
        return [favor_triton.FavorKernelConfig(n, f, w, False) for n, f, w in tiles]
    tiles = itertools.product(BLOCK_N, BLOCK_F, NUM_WARPS)
    return [favor_triton.FavorKernelConfig(n, f, w, True) for n, f, w in tiles] + [
        favor_triton.FavorKernelConfig(64, 64, 4, False)
    ]


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.double().cpu(), expected.double().cpu()
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-30)).item()


def check(projection: torch.Tensor, dtype: torch.dtype) -> tuple[float, float]:
    """(output error, gradient error) of the fused kernel on ``dtype`` inputs vs favor_attention in float64 (with the
    ω the kernel takes for ``dtype``)."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 1000, projection.shape[1], generator=gen).to(dtype) for _ in range(3))
    weight = torch.randn(2, 2, 1000, projection.shape[1], generator=gen, dtype=torch.float64)
    leaves64 = [t.double().requires_grad_() for t in (q, k, v)]
    expected = favor_attention(*leaves64, favor_triton.kernel_projection(projection, dtype).cpu().double())
    expected_grads = torch.autograd.grad((expected * weight).sum(), leaves64)
    leaves = [t.cuda().requires_grad_() for t in (q, k, v)]
    actual = favor_triton.fused_favor_attention(*leaves, projection)
    grads = torch.autograd.grad((actual.float() * weight.cuda().float()).sum(), leaves)
    grad_error = max(relative_error(g, e) for g, e in zip(grads, expected_grads))
    return relative_error(actual, expected), grad_error


def time_step(
    projection: torch.Tensor, length: int, batch_tokens: int, heads: int, repeats: int, dtype: torch.dtype = torch.bfloat16
) -> float:
    """Median ms of forward + backward of the fused kernel at ``batch_tokens`` tokens in ``dtype``, on q, k, v laid out
    as the Performer layer hands them over (views of one ``(batch, length, 3 · heads · head_dim)`` projection)."""
    batch = max(1, batch_tokens // length)
    qkv = torch.randn(batch, length, 3 * heads * projection.shape[1], device="cuda", dtype=dtype).requires_grad_()

    def forward() -> torch.Tensor:
        packed = qkv.unflatten(-1, (3, heads, -1)).permute(2, 0, 3, 1, 4)  # the layer's view of its qkv projection
        return favor_triton.fused_favor_attention_packed(packed, projection)

    step = make_step(forward, [qkv])
    for _ in range(2):
        step()
    return statistics.median(time_calls(step, "cuda", repeats))


def profiled_steps(projection: torch.Tensor, length: int, batch_tokens: int, heads: int, steps: int):
    """The CUDA profile (torch.profiler) of ``steps`` forward + backward steps, after a warm one."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    time_step(projection, length, batch_tokens, heads, repeats=1)  # warm
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        time_step(projection, length, batch_tokens, heads, repeats=steps)
    return prof


def profile(projection: torch.Tensor, length: int, batch_tokens: int, heads: int) -> str:
    """The CUDA time of each kernel in one forward + backward."""
    return profiled_steps(projection, length, batch_tokens, heads, 1).key_averages().table(
        sort_by="cuda_time_total", row_limit=15
    )


def sweep_config(index: int, only: Optional[str] = None) -> favor_triton.FavorKernelConfig:
    """Round ``index`` of the per-kernel sweep: every kernel (or ``only`` that one, the others at a small shape
    that fits any card) at launch shape ``LAUNCHES[index]``."""
    launch = favor_triton.KernelLaunch(*LAUNCHES[index])
    names = [only] if only else list(KERNEL_NAMES)
    return favor_triton.FavorKernelConfig(64, 64, 4, num_stages=2, per_kernel=tuple((name, launch) for name in names))


def sweep_round(index: int, projection: torch.Tensor, args: argparse.Namespace) -> dict:
    """Each kernel's ms at launch shape ``index``: all kernels in one step, or, where one of them does not fit the
    card, each kernel in a step of its own (a kernel that does not fit gets no time)."""
    def times(only: Optional[str] = None) -> dict[str, float]:
        favor_triton.KERNEL_CONFIG = sweep_config(index, only)
        measured = kernel_times(projection, args)
        return {only: measured[only]} if only else measured

    try:
        return times()
    except Exception:  # noqa: BLE001 - one kernel's shape did not fit (or compile): find which
        row = {}
        for name in KERNEL_NAMES:
            try:
                row |= times(name)
            except Exception as error:  # noqa: BLE001 - a result, not a crash
                row[f"{name}_status"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:100]}"
        return row


def kernel_times(projection: torch.Tensor, args: argparse.Namespace, steps: int = 3) -> dict[str, float]:
    """CUDA ms per call of each FAVOR+ kernel over ``steps`` profiled forward+backward steps (after a warm one)."""
    prof = profiled_steps(projection, args.length, args.batch_tokens, args.heads, steps)
    events = {event.key: event for event in prof.key_averages()}
    # device_time_total in recent torch, cuda_time_total in older releases
    total = lambda e: getattr(e, "device_time_total", None) or e.cuda_time_total  # noqa: E731
    return {name: total(events[kernel]) / events[kernel].count / 1e3
            for name, kernel in KERNEL_NAMES.items() if kernel in events}


def per_kernel_sweep(args: argparse.Namespace) -> dict:
    """Every kernel under every launch shape; the fastest per kernel, combined, checked and timed against the
    current default."""
    rounds = range(len(LAUNCHES))
    warm = [subprocess.Popen([sys.executable, __file__, "--warm", ",".join(map(str, rounds[i::8])), *shape_args(args)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(8)]
    for process in warm:
        process.wait()
    default = favor_triton.TILE_CHOICES["bf16"][0]
    projection = orthogonal_gaussian_projection(args.num_features, args.head_dim, device=torch.device("cuda"))
    rows = []
    for index in rounds:
        rows.append({"round": index, "launch": LAUNCHES[index], **sweep_round(index, projection, args)})
        print(json.dumps(rows[-1]), flush=True)
    best = {name: min((r for r in rows if name in r), key=lambda r: r[name]) for name in KERNEL_NAMES}
    per_kernel = tuple((name, favor_triton.KernelLaunch(*LAUNCHES[best[name]["round"]])) for name in KERNEL_NAMES)
    combined = favor_triton.FavorKernelConfig(64, 64, 4, num_stages=2, per_kernel=per_kernel)
    result = {"rows": rows, "best_per_kernel": {name: {"round": best[name]["round"], "ms": best[name][name]}
                                                for name in KERNEL_NAMES}}
    for label, config in (("default", default), ("combined", combined)):
        favor_triton.KERNEL_CONFIG = config
        out_error, grad_error = check(projection, torch.bfloat16)
        result[label] = {"config": repr(config), "out_error": out_error, "grad_error": grad_error,
                         "ms": time_step(projection, args.length, args.batch_tokens, args.heads, args.repeats),
                         "kernels_ms": kernel_times(projection, args)}
        print(label, json.dumps(result[label]), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--batch-tokens", type=int, default=131072)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--num-features", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16", help="input precision of the kernel")
    parser.add_argument("--profile", action="store_true", help="also print per-kernel times of the default config")
    parser.add_argument("--per-kernel", action="store_true", help="tune each kernel's launch shape (bf16)")
    parser.add_argument("--config", help=argparse.SUPPRESS)  # block_n,block_f,num_warps,bf16: one config (a child)
    parser.add_argument("--warm", help=argparse.SUPPRESS)  # comma-separated --per-kernel rounds to compile (a child)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device (the kernels' speed is what is tuned)")

    if args.config:
        return run_one(args)
    if args.warm:
        return compile_rounds(args)
    if args.per_kernel:
        result = {"device": device_name("cuda"), "torch": torch.__version__, "shape": vars(args) | {"out": None}}
        result |= per_kernel_sweep(args)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        return 0
    rows = [measure_in_subprocess(config, args) for config in candidate_configs(args.dtype)]
    default = favor_triton.tile_choices(DTYPES[args.dtype])[0]

    correct = [r for r in rows if r["status"] == "ok"]
    best = min(correct, key=lambda r: r["ms"]) if correct else None
    # a default with a shape per kernel (bf16's) is none of these uniform rows
    current = None if default.per_kernel else next(
        (r for r in rows if r["block_n"] == default.block_n and r["block_f"] == default.block_f
         and r["num_warps"] == default.num_warps and r["bf16_products"] == default.bf16_products), None)
    print(f"\n{'block_n':>7} {'block_f':>7} {'warps':>5} {'bf16':>5} {'ms':>8} {'out_err':>9} {'grad_err':>9}  status")
    for r in rows:
        ms = f"{r['ms']:.2f}" if "ms" in r else "-"
        errors = f"{r.get('out_error', float('nan')):9.2e} {r.get('grad_error', float('nan')):9.2e}"
        print(f"{r['block_n']:>7} {r['block_f']:>7} {r['num_warps']:>5} {str(r['bf16_products']):>5} {ms:>8} {errors}  "
              f"{r['status']}")
    print(f"\ncurrent default: {current}\nfastest correct: {best}")
    result = {"device": device_name("cuda"), "torch": torch.__version__, "shape": vars(args) | {"out": None},
              "default": dataclasses.asdict(default), "rows": rows, "best": best}
    if args.profile:
        favor_triton.KERNEL_CONFIG = default
        projection = orthogonal_gaussian_projection(args.num_features, args.head_dim, device=torch.device("cuda"))
        table = profile(projection, args.length, args.batch_tokens, args.heads)
        print(table)
        result["profile_default"] = table
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


def run_one(args: argparse.Namespace) -> int:
    """Check and time the one config of ``--config``; prints its row as JSON (the parent reads the last line)."""
    block_n, block_f, num_warps, bf16 = args.config.split(",")
    config = favor_triton.FavorKernelConfig(int(block_n), int(block_f), int(num_warps), bf16 == "True")
    favor_triton.KERNEL_CONFIG = config
    dtype = DTYPES[args.dtype]
    projection = orthogonal_gaussian_projection(args.num_features, args.head_dim, device=torch.device("cuda"))
    row = dataclasses.asdict(config) | {"dtype": args.dtype}
    try:
        row["out_error"], row["grad_error"] = check(projection, dtype)
        row["ms"] = time_step(projection, args.length, args.batch_tokens, args.heads, args.repeats, dtype)
        out_tol, grad_tol = TOLERANCES[args.dtype]
        row["status"] = "ok" if row["out_error"] < out_tol and row["grad_error"] < grad_tol else "wrong"
    except Exception as error:  # noqa: BLE001 - a config that does not compile is a result, not a crash
        row["status"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
    print(json.dumps(row), flush=True)
    return 0


def shape_args(args: argparse.Namespace) -> list[str]:
    """The problem-shape flags of this run, for a child process."""
    return ["--length", str(args.length), "--batch-tokens", str(args.batch_tokens), "--heads", str(args.heads),
            "--head-dim", str(args.head_dim), "--num-features", str(args.num_features)]


def compile_rounds(args: argparse.Namespace) -> int:
    """Compile the kernels of the given --per-kernel rounds by running each once on the timed shape (a child)."""
    projection = orthogonal_gaussian_projection(args.num_features, args.head_dim, device=torch.device("cuda"))
    for index in map(int, args.warm.split(",")):
        favor_triton.KERNEL_CONFIG = sweep_config(index)
        try:
            time_step(projection, args.length, args.batch_tokens, args.heads, repeats=1)
        except Exception:  # noqa: BLE001 - the timing process reports it
            pass
    return 0


def measure_in_subprocess(config: favor_triton.FavorKernelConfig, args: argparse.Namespace) -> dict:
    """One config's row, measured by a child process (a device fault there is this config's result)."""
    uniform = (config.block_n, config.block_f, config.num_warps, config.bf16_products)
    command = [sys.executable, __file__, "--config", ",".join(map(str, uniform)), "--dtype", args.dtype,
               *shape_args(args), "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        row = json.loads(lines[-1])
    else:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:160]
        row = dataclasses.asdict(config) | {"dtype": args.dtype, "status": f"failed: exit {done.returncode}: {tail}"}
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
