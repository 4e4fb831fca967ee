#!/usr/bin/env python
"""Time the fused FAVOR+ kernel's tile shapes and operand precisions; check each against the PyTorch path.

Each configuration (``FavorKernelConfig``: block_n, block_f, num_warps, bf16_products) first runs a small bf16
problem against ``favor_attention`` in float64 (forward and gradients; a config whose error exceeds bf16 rounding
is marked ``wrong`` and never the pick), then forward+backward of q, k, v ``(batch, heads, length, head_dim)`` at
131,072 tokens, as ``scripts/bench_attention.py``'s ``fused_favor_core`` row. Configs that do not compile (shared
memory) are reported as such. Prints a table and the fastest correct config; ``--out`` writes JSON.

    python scripts/tune_favor_kernel.py --out docs/benchmarks/h200/favor_tuning.json      # on a GPU
    python scripts/tune_favor_kernel.py --profile                                         # + per-kernel times
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import sys
from pathlib import Path

import torch

from hierarchicalvlm.attention.ops import favor_triton
from hierarchicalvlm.attention.ops.favor import favor_attention, orthogonal_gaussian_projection
from hierarchicalvlm.benchmark.measure import device_name, time_calls

BLOCK_N = (64, 128)
BLOCK_F = (64, 128)
NUM_WARPS = (4, 8)


def candidate_configs() -> list[favor_triton.FavorKernelConfig]:
    """Every tile shape with bf16 products, plus the 64 x 64 x 4-warp tile with TF32 products (the first kernel)."""
    tiles = itertools.product(BLOCK_N, BLOCK_F, NUM_WARPS)
    return [favor_triton.FavorKernelConfig(n, f, w, True) for n, f, w in tiles] + [
        favor_triton.FavorKernelConfig(64, 64, 4, False)
    ]


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.double().cpu(), expected.double().cpu()
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-30)).item()


def check(projection: torch.Tensor) -> tuple[float, float]:
    """(output error, gradient error) of the fused kernel on bf16 inputs vs favor_attention in float64."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 1000, projection.shape[1], generator=gen).bfloat16() for _ in range(3))
    weight = torch.randn(2, 2, 1000, projection.shape[1], generator=gen, dtype=torch.float64)
    leaves64 = [t.double().requires_grad_() for t in (q, k, v)]
    expected = favor_attention(*leaves64, projection.cpu().double())
    expected_grads = torch.autograd.grad((expected * weight).sum(), leaves64)
    leaves = [t.cuda().requires_grad_() for t in (q, k, v)]
    actual = favor_triton.fused_favor_attention(*leaves, projection)
    grads = torch.autograd.grad((actual.float() * weight.cuda().float()).sum(), leaves)
    grad_error = max(relative_error(g, e) for g, e in zip(grads, expected_grads))
    return relative_error(actual, expected), grad_error


def time_step(projection: torch.Tensor, length: int, batch_tokens: int, heads: int, repeats: int) -> float:
    """Median ms of forward + backward of the fused kernel at ``batch_tokens`` tokens, bf16."""
    batch = max(1, batch_tokens // length)
    q, k, v = (torch.randn(batch, heads, length, projection.shape[1], device="cuda", dtype=torch.bfloat16)
               .requires_grad_() for _ in range(3))

    def step() -> None:
        out = favor_triton.fused_favor_attention(q, k, v, projection)
        out.float().square().mean().backward()
        for t in (q, k, v):
            t.grad = None

    for _ in range(2):
        step()
    return statistics.median(time_calls(step, "cuda", repeats))


def profile(projection: torch.Tensor, length: int, batch_tokens: int, heads: int) -> str:
    """The CUDA time of each kernel in one forward + backward (torch.profiler)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    time_step(projection, length, batch_tokens, heads, repeats=1)  # warm
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        time_step(projection, length, batch_tokens, heads, repeats=1)
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--batch-tokens", type=int, default=131072)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--num-features", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="also print per-kernel times of the default config")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device (the kernels' speed is what is tuned)")

    projection = orthogonal_gaussian_projection(args.num_features, args.head_dim, device=torch.device("cuda"))
    default = favor_triton.KERNEL_CONFIG
    rows = []
    for config in candidate_configs():
        favor_triton.KERNEL_CONFIG = config
        row = dataclasses.asdict(config)
        try:
            row["out_error"], row["grad_error"] = check(projection)
            row["ms"] = time_step(projection, args.length, args.batch_tokens, args.heads, args.repeats)
            row["status"] = "ok" if row["out_error"] < 1e-2 and row["grad_error"] < 3e-2 else "wrong"
        except Exception as error:  # noqa: BLE001 - a config that does not compile is a result, not a crash
            row["status"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
        torch.cuda.empty_cache()
        rows.append(row)
        print(json.dumps(row), flush=True)
    favor_triton.KERNEL_CONFIG = default

    correct = [r for r in rows if r["status"] == "ok"]
    best = min(correct, key=lambda r: r["ms"]) if correct else None
    current = next((r for r in rows if r["block_n"] == default.block_n and r["block_f"] == default.block_f
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
        table = profile(projection, args.length, args.batch_tokens, args.heads)
        print(table)
        result["profile_default"] = table
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
