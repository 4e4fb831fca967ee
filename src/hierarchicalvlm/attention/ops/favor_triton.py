"""Fused FAVOR+ linear attention (non-causal) in Triton: the random features never reach GPU memory.

The PyTorch path (:mod:`.favor`) writes the feature maps φ(Q), φ(K) — ``(batch, heads, n, m)`` float32, 1 GB
each at 131K tokens × 8 heads × 256 features — and reads them back several times forward and backward.  Here
each kernel recomputes a tile of features (a chunk of the m at a time) from a tile of q or k in registers (one small
matmul with the projection ω) and consumes it at once:

* ``_key_state_fwd``    Σ_j φ(k_j) v_jᵀ and Σ_j φ(k_j), one partial state per (batch·head, sequence split,
                        feature chunk), with an online maximum (as flash attention's online softmax) for the
                        key stabiliser;
* ``_query_fwd``        out_i = φ(q_i)ᵀ S / φ(q_i)ᵀ z per query tile, with an online per-query maximum over the
                        feature chunks; it keeps each query's maximum and denominator for the backward;
* ``_query_bwd_dq``     dq per query tile;
* ``_query_bwd_state``  the partial gradients of the state (dS, dz) per (batch·head, split, feature chunk);
* ``_key_bwd``          dk, dv per key tile from dS, dz.

The partial states are merged (and rescaled to one stabiliser) by ``_merge_split_parts`` between the kernels. The
two kernels that sum over the sequence form their logits as features × positions, the layout their product with v
(or d_out) takes. Each kernel has its own launch shape (``FavorKernelConfig.launch``): they hold different tiles and
accumulators, and each is fastest at a different shape (``scripts/tune_favor_kernel.py --per-kernel``). (One
backward kernel for dq and dS together, tried on 2026-12-01, had to hold every feature of its query tile at once
and took about twice as long as these two: 2.4 against 1.25 ms on an H200.)

Every product accumulates in fp32. For fp32 inputs the operands are exact IEEE fp32. For bf16/fp16 inputs
(``FavorKernelConfig.bf16_products``) the feature logits ωᵀq, ωᵀk multiply the inputs as they are with ω rounded to
bf16 (:func:`kernel_projection`; exact products, which the layer's own ω, drawn rounded, makes the same estimator on
every path), and the products of features with values, states and gradients take bf16 operands, as flash attention
multiplies its probabilities with values; the merged state S and its gradient are then kept in bf16
(:func:`state_dtype`). Logits and stabilisers are in base 2 (exp2). The stabilisers are the same as in
:func:`.favor.favor_features` (per-query maximum; one maximum over the real keys of each (batch, head)) and the
1/√m factor is dropped:
all are constant factors of numerator and denominator alike, so the result is the PyTorch path's, which is
the reference this module is tested against (``tests/attention/test_favor_triton.py``).

Layout: q, k, v ``(batch, heads, n, head_dim)`` with unit stride on ``head_dim`` (views are fine), ``mask``
``(batch, n)`` bool with True = real key, projection ω ``(m, head_dim)``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Optional, TypeVar

import torch

from .kernel_policy import use_fused

try:
    import triton
    import triton.language as tl
    from triton.runtime.errors import OutOfResources
except ImportError:  # CPU-only installs: the PyTorch path is used
    triton = None

    class OutOfResources(Exception):  # type: ignore[no-redef]
        """Stands in for Triton's error where Triton is missing (never raised)."""

_T = TypeVar("_T")

# Below this denominator (every feature product underflowed) the output is ~0, as in favor._normalise; the
# kernels' features lack favor's 1/√m factor (1/m in a product of two), so the kernels floor at this times m.
_DENOMINATOR_FLOOR = torch.finfo(torch.float32).tiny ** 0.5
_PROGRAMS_PER_SM = 4


KERNELS = ("key_state", "query_fwd", "query_bwd_dq", "query_bwd_state", "key_bwd")


@dataclasses.dataclass(frozen=True)
class KernelLaunch:
    """One kernel's launch shape: sequence positions and random features per tile, warps, software-pipeline stages."""

    block_n: int
    block_f: int
    num_warps: int
    num_stages: int = 3


@dataclasses.dataclass(frozen=True)
class FavorKernelConfig:
    """Tile shapes and operand precision of the kernels (``scripts/tune_favor_kernel.py`` times the choices).

    Attributes:
        block_n, block_f, num_warps, num_stages: every kernel's launch shape (:class:`KernelLaunch`), unless
            ``per_kernel`` names that kernel.
        bf16_products: for bf16/fp16 inputs, run every product on tensor cores at the inputs' precision (fp32
            accumulation): the feature logits on the inputs and ω rounded to bf16 (exact products; an error there
            would be amplified by exp()), the products of features with values, states and gradients on bf16
            operands (2x the TF32 rate, half the shared memory). False: fp32 operands in TF32 (the same rounded ω).
            fp32 inputs always use IEEE fp32.
        per_kernel: ``(kernel name, KernelLaunch)`` pairs (names in :data:`KERNELS`) overriding the shared shape.
    """

    block_n: int = 128
    block_f: int = 128
    num_warps: int = 8
    bf16_products: bool = True
    num_stages: int = 3
    per_kernel: tuple[tuple[str, KernelLaunch], ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted({name for name, _ in self.per_kernel} - set(KERNELS))
        if unknown:
            raise ValueError(f"per_kernel names unknown kernels {unknown}; the kernels are {KERNELS}")

    def launch(self, kernel: str) -> KernelLaunch:
        """The launch shape of ``kernel`` (one of :data:`KERNELS`)."""
        return dict(self.per_kernel).get(
            kernel, KernelLaunch(self.block_n, self.block_f, self.num_warps, self.num_stages)
        )


# Tile choices per input precision, preferred first. The first bf16 choice gives each kernel the launch shape at
# which it was fastest on an H200 at 16K tokens x 8 heads x 64, 256 features (scripts/tune_favor_kernel.py
# --per-kernel, docs/benchmarks/h200/favor_tuning_per_kernel.json); the fp32 ones are the fastest uniform shapes of
# docs/benchmarks/h200/favor_tuning_fp32.json. A choice whose kernels need more shared memory than the device offers
# (Triton compares each compiled kernel with the device's queried limit at launch: OutOfResources) is dropped for
# that device and the next one runs. fp32 tiles take twice the shared memory of bf16 ones: 128 x 128 asks 256 KiB
# in the backward, over the H200's 227 KiB.
TUNED_BF16 = FavorKernelConfig(
    64, 64, 4, True, per_kernel=(
        ("key_state", KernelLaunch(64, 64, 4, 3)),
        ("query_fwd", KernelLaunch(128, 64, 8, 2)),
        ("query_bwd_dq", KernelLaunch(64, 64, 4, 2)),
        ("query_bwd_state", KernelLaunch(64, 128, 4, 3)),
        ("key_bwd", KernelLaunch(64, 128, 4, 2)),
    ),
)  # fmt: skip
TILE_CHOICES: dict[str, tuple[FavorKernelConfig, ...]] = {
    "bf16": (TUNED_BF16, FavorKernelConfig(64, 64, 4, True)),
    "fp32": (FavorKernelConfig(32, 64, 4, False), FavorKernelConfig(32, 64, 8, False)),
}
# When set, the only tiles used, for every precision (the tuning script and tests pin one this way).
KERNEL_CONFIG: Optional[FavorKernelConfig] = None
_too_large: set[tuple[str, FavorKernelConfig]] = set()  # (device, tiles) that did not fit


def tile_choices(dtype: torch.dtype) -> tuple[FavorKernelConfig, ...]:
    """The tiles tried for inputs of ``dtype``, preferred first."""
    if KERNEL_CONFIG is not None:
        return (KERNEL_CONFIG,)
    return TILE_CHOICES["fp32" if dtype == torch.float32 else "bf16"]


def run_with_fitting_tiles(run: Callable[[FavorKernelConfig], _T], dtype: torch.dtype, device: torch.device) -> _T:
    """``run(tiles)`` with the first tile choice for ``dtype`` whose kernels fit ``device``'s shared memory."""
    where = str(device)
    for tiles in tile_choices(dtype):
        if (where, tiles) in _too_large:
            continue
        try:
            return run(tiles)
        except OutOfResources:
            _too_large.add((where, tiles))
    raise RuntimeError(
        f"no tile choice of the fused FAVOR+ kernel fits the shared memory of {where} for {dtype} inputs "
        f"(tried {tile_choices(dtype)}); set attention.kernel=torch"
    )


def fused_favor_unavailable(x: torch.Tensor) -> Optional[str]:
    """None when :func:`fused_favor_attention` can run on ``x``, else why not.

    (Called directly, the kernel also runs on CPU tensors under ``TRITON_INTERPRET=1``; the tests use that.)
    """
    if not x.is_cuda:
        return "it runs on CUDA tensors only"
    if triton is None:
        return "Triton is not installed"
    if x.dtype not in (torch.bfloat16, torch.float16, torch.float32):
        return f"it takes bfloat16, float16 or float32 inputs, got {x.dtype}"
    if not tile_choices(x.dtype):
        return f"no tile choice is listed for {x.dtype} inputs (favor_triton.TILE_CHOICES)"
    return None


def fused_favor_slower(x: torch.Tensor) -> Optional[str]:
    """Why ``kernel: auto`` keeps the PyTorch path for ``x`` although the kernel could run it (None: it does not).

    fp32: IEEE fp32 products run on CUDA cores; on an H200 the fused kernel took 47 ms (fastest fp32 tiles, 16K
    tokens x 8 heads x 64, 256 features, docs/benchmarks/h200/favor_tuning_fp32.json) where the PyTorch path's
    cuBLAS products take ~28 ms. ``kernel: fused`` still runs it."""
    if x.dtype == torch.float32:
        return "in float32 the fused kernel is slower than the PyTorch path (docs/PERFORMANCE.md)"
    return None


def fused_favor_available(x: torch.Tensor) -> bool:
    """Whether a layer with ``kernel: auto`` takes :func:`fused_favor_attention` for ``x`` (the kernel can run on it
    and is the faster path, and neither ``HVLM_FAVOR_KERNEL=torch`` nor :func:`.kernel_policy.plain_pytorch_paths`
    turns it off)."""
    return use_fused("auto", "favor", fused_favor_unavailable(x), fused_favor_slower(x))


if triton is not None:
    LOG2E = tl.constexpr(1.4426950408889634)

    @triton.jit
    def _load_rows(ptr, offs_n, offs_d, n_ok, d_ok, stride_n):
        """A tile of rows in the tensor's own dtype (the logits' products take bf16/fp16 rows as they are)."""
        rows = ptr + offs_n[:, None] * stride_n + offs_d[None, :]
        return tl.load(rows, mask=n_ok[:, None] & d_ok[None, :], other=0.0)

    @triton.jit
    def _store_rows(ptr, offs_n, offs_d, n_ok, d_ok, stride_n, value):
        tl.store(ptr + offs_n[:, None] * stride_n + offs_d[None, :], value, mask=n_ok[:, None] & d_ok[None, :])

    @triton.jit
    def _tile(PTR, rows, offs_d, BLOCK_D: tl.constexpr):
        """Rows of a row-major ``(·, BLOCK_D)`` float32 buffer: the padded ω, a key state S or its gradient dS."""
        return tl.load(PTR + rows[:, None] * BLOCK_D + offs_d[None, :])

    @triton.jit
    def _feature_chunk(W, fc, offs_d, F, BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr):
        """Offsets and validity of the features of chunk ``fc``, and that chunk's rows of ω."""
        offs_f = fc * BLOCK_F + tl.arange(0, BLOCK_F)
        return offs_f, offs_f < F, _tile(W, offs_f, offs_d, BLOCK_D)

    @triton.jit
    def _row_program(H, N, D, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
        """A per-row-block program's (batch·head, batch, head), and offsets and validity of its block of sequence
        positions and of the head dimensions."""
        bh = tl.program_id(0)
        offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, BLOCK_D)
        return bh, bh // H, bh % H, offs_n, offs_d, offs_n < N, offs_d < D

    @triton.jit
    def _query_logits(q, w, f_ok, x_scale, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr):
        """ωᵀq̂ for a tile of queries and a chunk of features; padded features at -1e30 (φ = 0)."""
        return tl.where(f_ok[None, :], _logits(q, w, x_scale, PRECISION, BF16_PRODUCTS), -1.0e30)

    @triton.jit
    def _store_state_part(STATE_OUT, SUM_OUT, part, offs_f, offs_d, state, key_sum,
                          F_PAD: tl.constexpr, BLOCK_D: tl.constexpr):  # fmt: skip
        """One program's partial (S, z) or (dS, dz), summed over the splits on the host."""
        tl.store(STATE_OUT + (part * F_PAD + offs_f[:, None]) * BLOCK_D + offs_d[None, :], state)
        tl.store(SUM_OUT + part * F_PAD + offs_f, key_sum)

    @triton.jit
    def _load_rows_of(ptr, bh, offs_n, n_ok, N):
        """One float per row of a (batch·heads, N) row-statistics tensor."""
        return tl.load(ptr + bh * N + offs_n, mask=n_ok, other=0.0)

    @triton.jit
    def _logit_dot(a, b, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr):
        """a @ b for the feature logits, fp32 accumulation: on the operands as they are (bf16/fp16 inputs and ω in
        that dtype, rounded from bf16: exact products) if BF16_PRODUCTS, else on fp32 ones."""
        if BF16_PRODUCTS:
            return tl.dot(a, b)
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision=PRECISION)

    @triton.jit
    def _logits(x, w, x_scale, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr):
        """log₂(e)·ωᵀx̂ (x̂ = d^(-1/4)·x) for a tile of rows x, as (positions, features).

        Every logit, maximum and stabiliser in the kernels is in base 2 (exp2(log₂(e)·s) = exp(s)): the exponentials
        are exp2 instructions, one multiplication per feature fewer than exp. Gradients stay in natural units."""
        return _logit_dot(x, tl.trans(w), PRECISION, BF16_PRODUCTS) * (x_scale * LOG2E)

    @triton.jit
    def _logits_t(w, x_t, x_scale, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr):
        """log₂(e)·ωx̂ᵀ: the logits as (features, positions), from a tile of rows read transposed."""
        return _logit_dot(w, x_t, PRECISION, BF16_PRODUCTS) * (x_scale * LOG2E)

    @triton.jit
    def _product(a, b, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr):
        """a @ b with fp32 accumulation, on bf16 operands if BF16_PRODUCTS (see FavorKernelConfig)."""
        if BF16_PRODUCTS:
            return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision=PRECISION)

    @triton.jit
    def _half_squared_norms(x, x_scale, axis: tl.constexpr):
        """log₂(e)·‖x̂‖²/2 of each row (axis 1) or column (axis 0) of a tile."""
        x = x.to(tl.float32)
        return tl.sum(x * x, axis=axis) * (0.5 * LOG2E * x_scale * x_scale)

    @triton.jit
    def _key_logits(k, w, valid, x_scale, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr):
        """log₂(e)·(ωᵀk̂ − ‖k̂‖²/2) for a tile of keys (k̂ = d^(-1/4)·k); invalid entries at -1e30."""
        s = _logits(k, w, x_scale, PRECISION, BF16_PRODUCTS) - _half_squared_norms(k, x_scale, 1)[:, None]
        return tl.where(valid, s, -1.0e30)

    @triton.jit
    def _key_ok(MASK, b, stride_mb, offs_n, n_ok, HAS_MASK: tl.constexpr):
        if HAS_MASK:
            return n_ok & (tl.load(MASK + b * stride_mb + offs_n, mask=n_ok, other=0) != 0)
        return n_ok

    @triton.jit
    def _split_program(W, H, D, F, BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr):
        """A split-reduction program's (batch·head, split, batch, head), head dims, its chunk of features (rows of
        ω) and zeroed (state, sum) accumulators."""
        bh, split, fc = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        offs_d = tl.arange(0, BLOCK_D)
        offs_f, f_ok, w = _feature_chunk(W, fc, offs_d, F, BLOCK_D, BLOCK_F)
        state = tl.zeros((BLOCK_F, BLOCK_D), dtype=tl.float32)
        state_sum = tl.zeros((BLOCK_F,), dtype=tl.float32)
        return bh, split, bh // H, bh % H, offs_d, offs_d < D, offs_f, f_ok, w, state, state_sum

    @triton.jit
    def _split_block(split, i, blocks_per_split, N, BLOCK_N: tl.constexpr):
        """Offsets and validity of block ``i`` of this program's split of the sequence."""
        offs_n = (split * blocks_per_split + i) * BLOCK_N + tl.arange(0, BLOCK_N)
        return offs_n, offs_n < N

    @triton.jit
    def _load_rows_t(ptr, offs_n, offs_d, n_ok, d_ok, stride_n):
        """A tile of rows read transposed, as ``(head dims, positions)``."""
        rows = ptr + offs_n[None, :] * stride_n + offs_d[:, None]
        return tl.load(rows, mask=n_ok[None, :] & d_ok[:, None], other=0.0)

    @triton.jit
    def _key_state_fwd(
        K, V, W, MASK, STATE_OUT, Z_OUT, M_OUT,
        stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_mb,
        H, N, D, F, blocks_per_split, x_scale,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr, F_PAD: tl.constexpr,
        HAS_MASK: tl.constexpr, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr,
    ):  # fmt: skip
        """Partial Σ φ(k) vᵀ, Σ φ(k) of one (batch·head, split of the sequence, chunk of features).

        The logits are formed as ωkᵀ (features × keys), the layout in which the product with v takes them: the
        kωᵀ form needed a transpose in registers and took 1.8x as long on an H200 (docs/PERFORMANCE.md)."""
        bh, split, b, h, offs_d, d_ok, offs_f, f_ok, w, state, key_sum = _split_program(W, H, D, F, BLOCK_D, BLOCK_F)
        running_max = tl.full((BLOCK_F,), -1.0e30, tl.float32)  # all entries equal: one stabiliser per program
        k_base = K + b * stride_kb + h * stride_kh
        v_base = V + b * stride_vb + h * stride_vh
        for i in range(0, blocks_per_split):
            offs_n, n_ok = _split_block(split, i, blocks_per_split, N, BLOCK_N)
            k_t = _load_rows_t(k_base, offs_n, offs_d, n_ok, d_ok, stride_kn)
            v = _load_rows(v_base, offs_n, offs_d, n_ok, d_ok, stride_vn)
            valid_t = f_ok[:, None] & _key_ok(MASK, b, stride_mb, offs_n, n_ok, HAS_MASK)[None, :]
            s_t = _logits_t(w, k_t, x_scale, PRECISION, BF16_PRODUCTS) - _half_squared_norms(k_t, x_scale, 0)[None, :]
            s_t = tl.where(valid_t, s_t, -1.0e30)
            new_max = tl.maximum(running_max, tl.max(s_t))
            rescale = tl.exp2(running_max - new_max)
            p_t = tl.where(valid_t, tl.exp2(s_t - new_max[:, None]), 0.0)
            state = state * rescale[:, None] + _product(p_t, v, PRECISION, BF16_PRODUCTS)
            key_sum = key_sum * rescale + tl.sum(p_t, axis=1)
            running_max = new_max
        part = bh * tl.num_programs(1) + split
        _store_state_part(STATE_OUT, Z_OUT, part, offs_f, offs_d, state, key_sum, F_PAD, BLOCK_D)
        fc = tl.program_id(2)  # this program's chunk of features: one stabiliser per chunk
        tl.store(M_OUT + (part * tl.num_programs(2) + fc) + offs_f * 0, running_max, mask=offs_f == fc * BLOCK_F)

    @triton.jit
    def _query_fwd(
        Q, W, STATE, Z, OUT, ROW_MAX, ROW_DEN,
        stride_qb, stride_qh, stride_qn, stride_ob, stride_oh, stride_on,
        H, N, D, F, floor, x_scale,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr, F_PAD: tl.constexpr,
        PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr,
    ):  # fmt: skip
        """out = φ(q)ᵀS / φ(q)ᵀz per query tile, features chunk by chunk with an online per-query maximum."""
        bh, b, h, offs_n, offs_d, n_ok, d_ok = _row_program(H, N, D, BLOCK_N, BLOCK_D)
        q = _load_rows(Q + b * stride_qb + h * stride_qh, offs_n, offs_d, n_ok, d_ok, stride_qn)
        row_max = tl.full((BLOCK_N,), -1.0e30, tl.float32)
        numerator = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
        denominator = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for fc in range(0, F_PAD // BLOCK_F):
            offs_f, f_ok, w = _feature_chunk(W, fc, offs_d, F, BLOCK_D, BLOCK_F)
            s = _query_logits(q, w, f_ok, x_scale, PRECISION, BF16_PRODUCTS)
            new_max = tl.maximum(row_max, tl.max(s, axis=1))
            rescale = tl.exp2(row_max - new_max)
            p = tl.exp2(s - new_max[:, None])
            state = _tile(STATE, bh * F_PAD + offs_f, offs_d, BLOCK_D)
            key_sum = tl.load(Z + bh * F_PAD + offs_f)
            numerator = numerator * rescale[:, None] + _product(p, state, PRECISION, BF16_PRODUCTS)
            denominator = denominator * rescale + tl.sum(p * key_sum[None, :], axis=1)
            row_max = new_max
        out = numerator / tl.maximum(denominator, floor)[:, None]
        o_base = OUT + b * stride_ob + h * stride_oh
        _store_rows(o_base, offs_n, offs_d, n_ok, d_ok, stride_on, out.to(OUT.dtype.element_ty))
        tl.store(ROW_MAX + bh * N + offs_n, row_max, mask=n_ok)
        tl.store(ROW_DEN + bh * N + offs_n, denominator, mask=n_ok)

    @triton.jit
    def _output_grads(d_out, out, ROW_DEN, bh, offs_n, n_ok, N, floor):
        """out = num / den:  d num = d_out / den,  d den = −(d_out · out) / den  (0 where den was floored)."""
        raw_denominator = _load_rows_of(ROW_DEN, bh, offs_n, n_ok, N)
        denominator = tl.maximum(raw_denominator, floor)
        d_out = d_out.to(tl.float32)
        d_den = tl.where(raw_denominator > floor, -tl.sum(d_out * out.to(tl.float32), axis=1) / denominator, 0.0)
        return d_out / denominator[:, None], d_den

    @triton.jit
    def _query_bwd_dq(
        Q, DO, OUT, W, STATE, Z, ROW_MAX, ROW_DEN, DQ,
        stride_qb, stride_qh, stride_qn, stride_gb, stride_gh, stride_gn, stride_ob, stride_oh, stride_on,
        stride_dqb, stride_dqh, stride_dqn,
        H, N, D, F, floor, x_scale,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr, F_PAD: tl.constexpr,
        PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr,
    ):  # fmt: skip
        bh, b, h, offs_n, offs_d, n_ok, d_ok = _row_program(H, N, D, BLOCK_N, BLOCK_D)
        q = _load_rows(Q + b * stride_qb + h * stride_qh, offs_n, offs_d, n_ok, d_ok, stride_qn)
        d_out = _load_rows(DO + b * stride_gb + h * stride_gh, offs_n, offs_d, n_ok, d_ok, stride_gn)
        out = _load_rows(OUT + b * stride_ob + h * stride_oh, offs_n, offs_d, n_ok, d_ok, stride_on)
        d_num, d_den = _output_grads(d_out, out, ROW_DEN, bh, offs_n, n_ok, N, floor)
        row_max = _load_rows_of(ROW_MAX, bh, offs_n, n_ok, N)
        d_q = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
        for fc in range(0, F_PAD // BLOCK_F):
            offs_f, f_ok, w = _feature_chunk(W, fc, offs_d, F, BLOCK_D, BLOCK_F)
            s = _query_logits(q, w, f_ok, x_scale, PRECISION, BF16_PRODUCTS)
            p = tl.exp2(s - row_max[:, None])
            state = _tile(STATE, bh * F_PAD + offs_f, offs_d, BLOCK_D)
            key_sum = tl.load(Z + bh * F_PAD + offs_f)
            d_p = _product(d_num, tl.trans(state), PRECISION, BF16_PRODUCTS) + d_den[:, None] * key_sum[None, :]
            # the per-query stabiliser is a common factor of numerator and denominator: its gradient cancels
            d_q += _product(d_p * p, w, PRECISION, BF16_PRODUCTS)
        dq_base = DQ + b * stride_dqb + h * stride_dqh
        _store_rows(dq_base, offs_n, offs_d, n_ok, d_ok, stride_dqn, (d_q * x_scale).to(DQ.dtype.element_ty))

    @triton.jit
    def _query_bwd_state(
        Q, DO, OUT, W, ROW_MAX, ROW_DEN, DSTATE_OUT, DZ_OUT,
        stride_qb, stride_qh, stride_qn, stride_gb, stride_gh, stride_gn, stride_ob, stride_oh, stride_on,
        H, N, D, F, blocks_per_split, floor, x_scale,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr, F_PAD: tl.constexpr,
        PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr,
    ):  # fmt: skip
        """Partial dS = Σ φ(q) d_numᵀ and dz = Σ φ(q) d_den of one (batch·head, split, chunk of features); the
        logits as ωqᵀ, as in ``_key_state_fwd``."""
        bh, split, b, h, offs_d, d_ok, offs_f, f_ok, w, d_state, d_key_sum = _split_program(
            W, H, D, F, BLOCK_D, BLOCK_F
        )
        for i in range(0, blocks_per_split):
            offs_n, n_ok = _split_block(split, i, blocks_per_split, N, BLOCK_N)
            q_t = _load_rows_t(Q + b * stride_qb + h * stride_qh, offs_n, offs_d, n_ok, d_ok, stride_qn)
            d_out = _load_rows(DO + b * stride_gb + h * stride_gh, offs_n, offs_d, n_ok, d_ok, stride_gn)
            out = _load_rows(OUT + b * stride_ob + h * stride_oh, offs_n, offs_d, n_ok, d_ok, stride_on)
            d_num, d_den = _output_grads(d_out, out, ROW_DEN, bh, offs_n, n_ok, N, floor)
            row_max = _load_rows_of(ROW_MAX, bh, offs_n, n_ok, N)
            valid_t = f_ok[:, None] & n_ok[None, :]
            s_t = _logits_t(w, q_t, x_scale, PRECISION, BF16_PRODUCTS)
            p_t = tl.where(valid_t, tl.exp2(s_t - row_max[None, :]), 0.0)
            d_state += _product(p_t, d_num, PRECISION, BF16_PRODUCTS)
            d_key_sum += tl.sum(p_t * d_den[None, :], axis=1)
        part = bh * tl.num_programs(1) + split
        _store_state_part(DSTATE_OUT, DZ_OUT, part, offs_f, offs_d, d_state, d_key_sum, F_PAD, BLOCK_D)

    @triton.jit
    def _merge_split_parts(
        STATES, SUMS, MAXIMA, STATE, SUM, KEY_MAX, splits, chunks,
        CHUNK_F: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_D: tl.constexpr, F_PAD: tl.constexpr,
        PARTS_POW2: tl.constexpr, RESCALE: tl.constexpr,
    ):  # fmt: skip
        """One (batch·head, block of features) of S, z (or dS, dz): the sum of the per-split partials. With RESCALE
        each partial is first brought from its own stabiliser (one per split and chunk of CHUNK_F features) to the
        largest of the (batch·head), which is stored as the key stabiliser."""
        bh, fb = tl.program_id(0), tl.program_id(1)
        offs_f = fb * BLOCK_F + tl.arange(0, BLOCK_F)
        offs_d = tl.arange(0, BLOCK_D)
        state = tl.zeros((BLOCK_F, BLOCK_D), dtype=tl.float32)
        total = tl.zeros((BLOCK_F,), dtype=tl.float32)
        if RESCALE:
            offs_parts = tl.arange(0, PARTS_POW2)
            parts_ok = offs_parts < splits * chunks
            maxima = tl.load(MAXIMA + bh * splits * chunks + offs_parts, mask=parts_ok, other=-1.0e30)
            key_max = tl.max(maxima)
        for split in range(0, splits):
            part = bh * splits + split
            weight = tl.full((BLOCK_F,), 1.0, tl.float32)
            if RESCALE:
                weight = tl.exp2(tl.load(MAXIMA + part * chunks + offs_f // CHUNK_F) - key_max)
            state += _tile(STATES, part * F_PAD + offs_f, offs_d, BLOCK_D) * weight[:, None]
            total += tl.load(SUMS + part * F_PAD + offs_f) * weight
        tl.store(STATE + (bh * F_PAD + offs_f[:, None]) * BLOCK_D + offs_d[None, :], state.to(STATE.dtype.element_ty))
        tl.store(SUM + bh * F_PAD + offs_f, total)
        if RESCALE:
            tl.store(KEY_MAX + bh + offs_f * 0, key_max + tl.zeros((BLOCK_F,), tl.float32), mask=offs_f == 0)

    @triton.jit
    def _key_bwd(
        K, V, W, MASK, M, DSTATE, DZ, DK, DV,
        stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn, stride_mb,
        stride_dkb, stride_dkh, stride_dkn, stride_dvb, stride_dvh, stride_dvn,
        H, N, D, F, x_scale,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr, F_PAD: tl.constexpr,
        HAS_MASK: tl.constexpr, PRECISION: tl.constexpr, BF16_PRODUCTS: tl.constexpr,
    ):  # fmt: skip
        bh, b, h, offs_n, offs_d, n_ok, d_ok = _row_program(H, N, D, BLOCK_N, BLOCK_D)
        k = _load_rows(K + b * stride_kb + h * stride_kh, offs_n, offs_d, n_ok, d_ok, stride_kn)
        v = _load_rows(V + b * stride_vb + h * stride_vh, offs_n, offs_d, n_ok, d_ok, stride_vn)
        key_ok = _key_ok(MASK, b, stride_mb, offs_n, n_ok, HAS_MASK)
        key_max = tl.load(M + bh)
        d_k = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
        d_v = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
        d_logit_sum = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for fc in range(0, F_PAD // BLOCK_F):
            offs_f, f_ok, w = _feature_chunk(W, fc, offs_d, F, BLOCK_D, BLOCK_F)
            valid = key_ok[:, None] & f_ok[None, :]
            p = tl.where(valid, tl.exp2(_key_logits(k, w, valid, x_scale, PRECISION, BF16_PRODUCTS) - key_max), 0.0)
            d_state = _tile(DSTATE, bh * F_PAD + offs_f, offs_d, BLOCK_D)
            d_key_sum = tl.load(DZ + bh * F_PAD + offs_f)
            d_p = _product(v, tl.trans(d_state), PRECISION, BF16_PRODUCTS) + d_key_sum[None, :]
            d_v += _product(p, d_state, PRECISION, BF16_PRODUCTS)
            d_logits = d_p * p  # the shared key stabiliser is a common factor: its gradient cancels
            d_k += _product(d_logits, w, PRECISION, BF16_PRODUCTS)
            d_logit_sum += tl.sum(d_logits, axis=1)
        d_k = x_scale * d_k - (x_scale * x_scale) * d_logit_sum[:, None] * k.to(tl.float32)
        dk_base, dv_base = DK + b * stride_dkb + h * stride_dkh, DV + b * stride_dvb + h * stride_dvh
        _store_rows(dk_base, offs_n, offs_d, n_ok, d_ok, stride_dkn, d_k.to(DK.dtype.element_ty))
        _store_rows(dv_base, offs_n, offs_d, n_ok, d_ok, stride_dvn, d_v.to(DV.dtype.element_ty))


def _unit_stride_rows(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its last dimension has unit stride (the kernels read rows of head_dim), else a copy."""
    return t if t.stride(-1) == 1 else t.contiguous()


def _strides(t: torch.Tensor) -> tuple[int, int, int]:
    return t.stride(0), t.stride(1), t.stride(2)


def _split_grid(batch_heads: int, num_blocks: int, device: torch.device) -> tuple[int, int]:
    """(splits, blocks per split) so that the kernels that sum over the sequence fill the GPU a few programs deep."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
    splits = max(1, min(num_blocks, math.ceil(_PROGRAMS_PER_SM * sms / batch_heads)))
    per_split = math.ceil(num_blocks / splits)
    return math.ceil(num_blocks / per_split), per_split


def _padded_sizes(head_dim: int, num_features: int) -> tuple[int, int]:
    """Tile width covering head_dim (a power of two ≥ 16, the smallest tensor-core operand) and the feature count
    rounded up to a multiple of every tile choice's ``block_f`` (a fallback to other tiles needs no re-padding)."""
    launches = [t.launch(k) for t in tile_choices(torch.float32) + tile_choices(torch.bfloat16) for k in KERNELS]
    block_f = math.lcm(*(launch.block_f for launch in launches))
    return max(16, 1 << (head_dim - 1).bit_length()), -(-num_features // block_f) * block_f


def _options(q: torch.Tensor, w: torch.Tensor, tiles: FavorKernelConfig, kernel: str) -> dict:
    """The compile-time arguments of ``kernel`` (one of :data:`KERNELS`) under ``tiles``."""
    launch = tiles.launch(kernel)
    low_precision = q.dtype != torch.float32
    return dict(
        BLOCK_N=launch.block_n,
        BLOCK_D=w.shape[1],
        BLOCK_F=launch.block_f,
        F_PAD=w.shape[0],
        PRECISION="tf32" if low_precision else "ieee",
        # Triton's CPU interpreter (3.9) miscomputes bf16 dots: there the products stay fp32 (GPU tests cover bf16)
        BF16_PRODUCTS=low_precision and tiles.bf16_products and os.environ.get("TRITON_INTERPRET") != "1",
        num_warps=launch.num_warps,
        num_stages=launch.num_stages,
    )


def merge_splits(
    states: torch.Tensor, sums: torch.Tensor, maxima: Optional[torch.Tensor] = None, chunk_f: int = 1,
    state_dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The per-split partials ``states (bh, splits, F_PAD, D)``, ``sums (bh, splits, F_PAD)`` summed over the splits,
    in one kernel launch (a compiled PyTorch merge cost more host time than its GPU time). With ``maxima (bh, splits,
    F_PAD / chunk_f)``, each partial's stabiliser per chunk of ``chunk_f`` features (base 2, as every stabiliser of the
    kernels), the partials are first rescaled to the largest one. Returns ``(S in state_dtype, z, that maximum (bh,))``;
    without maxima the maximum is empty."""
    bh, splits, f_pad, block_d = states.shape
    chunks = maxima.shape[2] if maxima is not None else 1
    state, total = states.new_empty(bh, f_pad, block_d, dtype=state_dtype), sums.new_empty(bh, f_pad)
    key_max = states.new_empty(bh if maxima is not None else 0)
    block_f = math.gcd(32, f_pad)
    _merge_split_parts[(bh, f_pad // block_f)](
        states, sums, maxima if maxima is not None else sums, state, total, key_max, splits, chunks,
        CHUNK_F=chunk_f, BLOCK_F=block_f, BLOCK_D=block_d, F_PAD=f_pad,
        PARTS_POW2=triton.next_power_of_2(splits * chunks), RESCALE=maxima is not None,
    )  # fmt: skip
    return state, total, key_max


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype in which the merged state S and its gradient dS are stored for inputs of ``dtype``: bf16 for bf16/fp16
    inputs, whose kernels multiply S on bf16 operands anyway (the same rounding, half the bytes every tile reads), else
    float32. Their sums z, dz stay float32 (the denominator)."""
    return torch.float32 if dtype == torch.float32 else torch.bfloat16


def _mask_args(mask: Optional[torch.Tensor], dummy: torch.Tensor) -> tuple[torch.Tensor, int]:
    return (mask, mask.stride(0)) if mask is not None else (dummy, 0)


def _token_major(*shape: int, like: torch.Tensor, dtype: torch.dtype, packed: bool = False) -> torch.Tensor:
    """An empty ``(B, H, N, D)`` tensor (``(3, B, H, N, D)`` if ``packed``) stored token-major, as ``(B, N, H, D)``
    (``(B, N, 3, H, D)``): the layout in which merging the heads (and un-packing q, k, v) is a free view."""
    if packed:
        _, batch, heads, n, d = shape
        return torch.empty(batch, n, 3, heads, d, device=like.device, dtype=dtype).permute(2, 0, 3, 1, 4)
    batch, heads, n, d = shape
    return torch.empty(batch, n, heads, d, device=like.device, dtype=dtype).transpose(1, 2)


# Custom ops (not a bare autograd.Function) so that torch.compile keeps the kernels as opaque nodes of one graph.
# They take q, k, v packed as one (3, B, H, N, D) tensor and return the output and d(qkv) token-major: in the layer
# q, k, v are views of the qkv projection's output, so no copy is made on the way in, on the way out (the head
# merge before the output projection is a view), or for the gradient (one buffer, the projection's gradient layout).
@torch.library.custom_op("hvlm::favor_forward", mutates_args=())
def _favor_forward(
    qkv: torch.Tensor, w: torch.Tensor, mask: Optional[torch.Tensor], num_features: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The output, and for the backward: key state S and sum z, key stabiliser, per-query maximum and denominator."""
    q, k, v = _unit_stride_rows(qkv).unbind(0)  # a compiled caller may hand over any layout
    return run_with_fitting_tiles(lambda tiles: _forward_kernels(q, k, v, w, mask, num_features, tiles), q.dtype, q.device)


def _forward_kernels(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: torch.Tensor, mask: Optional[torch.Tensor], num_features: int,
    tiles: FavorKernelConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, heads, n, d = q.shape
    bh, f_pad, block_d = batch * heads, w.shape[0], w.shape[1]
    key_options = _options(q, w, tiles, "key_state")
    splits, per_split = _split_grid(bh, triton.cdiv(n, key_options["BLOCK_N"]), q.device)
    chunks = f_pad // key_options["BLOCK_F"]
    f32 = dict(device=q.device, dtype=torch.float32)
    states = torch.empty(bh, splits, f_pad, block_d, **f32)
    key_sums = torch.empty(bh, splits, f_pad, **f32)
    maxima = torch.empty(bh, splits, chunks, **f32)
    mask_arg, mask_stride = _mask_args(mask, q)
    _key_state_fwd[(bh, splits, chunks)](
        k, v, w, mask_arg, states, key_sums, maxima, *_strides(k), *_strides(v), mask_stride,
        heads, n, d, num_features, per_split, d**-0.25, HAS_MASK=mask is not None, **key_options,
    )  # fmt: skip
    state, key_sum, key_max = merge_splits(states, key_sums, maxima, key_options["BLOCK_F"], state_dtype(q.dtype))
    out = _token_major(batch, heads, n, d, like=q, dtype=v.dtype)
    row_max, row_den = torch.empty(bh, n, **f32), torch.empty(bh, n, **f32)
    query_options = _options(q, w, tiles, "query_fwd")
    _query_fwd[(bh, triton.cdiv(n, query_options["BLOCK_N"]))](
        q, w, state, key_sum, out, row_max, row_den, *_strides(q), *_strides(out),
        heads, n, d, num_features, _DENOMINATOR_FLOOR * num_features, d**-0.25, **query_options,
    )  # fmt: skip
    return out, state, key_sum, key_max, row_max, row_den


@_favor_forward.register_fake
def _(qkv, w, mask, num_features):
    _, batch, heads, n, d = qkv.shape
    bh, f_pad, block_d = batch * heads, w.shape[0], w.shape[1]
    f32 = dict(dtype=torch.float32)
    return (
        _token_major(batch, heads, n, d, like=qkv, dtype=qkv.dtype),
        qkv.new_empty(bh, f_pad, block_d, dtype=state_dtype(qkv.dtype)),
        qkv.new_empty(bh, f_pad, **f32),
        qkv.new_empty(bh, **f32),
        qkv.new_empty(bh, n, **f32),
        qkv.new_empty(bh, n, **f32),
    )


@torch.library.custom_op("hvlm::favor_backward", mutates_args=())
def _favor_backward(
    d_out: torch.Tensor,
    out: torch.Tensor,
    qkv: torch.Tensor,
    w: torch.Tensor,
    mask: Optional[torch.Tensor],
    num_features: int,
    state: torch.Tensor,
    key_sum: torch.Tensor,
    key_max: torch.Tensor,
    row_max: torch.Tensor,
    row_den: torch.Tensor,
) -> torch.Tensor:
    d_out, out, qkv = _unit_stride_rows(d_out), _unit_stride_rows(out), _unit_stride_rows(qkv)
    saved = (state, key_sum, key_max, row_max, row_den)
    return run_with_fitting_tiles(
        lambda tiles: _backward_kernels(d_out, out, qkv, w, mask, num_features, *saved, tiles), qkv.dtype, qkv.device)


def _backward_kernels(
    d_out: torch.Tensor, out: torch.Tensor, qkv: torch.Tensor, w: torch.Tensor,
    mask: Optional[torch.Tensor], num_features: int, state: torch.Tensor, key_sum: torch.Tensor, key_max: torch.Tensor,
    row_max: torch.Tensor, row_den: torch.Tensor, tiles: FavorKernelConfig,
) -> torch.Tensor:
    q, k, v = qkv.unbind(0)
    batch, heads, n, d = q.shape
    bh, f_pad, block_d = batch * heads, w.shape[0], w.shape[1]
    floor = _DENOMINATOR_FLOOR * num_features
    f32 = dict(device=q.device, dtype=torch.float32)
    d_qkv = _token_major(*qkv.shape, like=qkv, dtype=qkv.dtype, packed=True)
    d_q, d_k, d_v = d_qkv.unbind(0)
    dq_options = _options(q, w, tiles, "query_bwd_dq")
    _query_bwd_dq[(bh, triton.cdiv(n, dq_options["BLOCK_N"]))](
        q, d_out, out, w, state, key_sum, row_max, row_den, d_q,
        *_strides(q), *_strides(d_out), *_strides(out), *_strides(d_q), heads, n, d, num_features, floor, d**-0.25,
        **dq_options,
    )  # fmt: skip
    state_options = _options(q, w, tiles, "query_bwd_state")
    splits, per_split = _split_grid(bh, triton.cdiv(n, state_options["BLOCK_N"]), q.device)
    d_states = torch.empty(bh, splits, f_pad, block_d, **f32)
    d_key_sums = torch.empty(bh, splits, f_pad, **f32)
    _query_bwd_state[(bh, splits, f_pad // state_options["BLOCK_F"])](
        q, d_out, out, w, row_max, row_den, d_states, d_key_sums, *_strides(q), *_strides(d_out), *_strides(out),
        heads, n, d, num_features, per_split, floor, d**-0.25, **state_options,
    )  # fmt: skip
    mask_arg, mask_stride = _mask_args(mask, q)
    key_options = _options(q, w, tiles, "key_bwd")
    d_state, d_key_sum, _ = merge_splits(d_states, d_key_sums, state_dtype=state_dtype(q.dtype))
    _key_bwd[(bh, triton.cdiv(n, key_options["BLOCK_N"]))](
        k, v, w, mask_arg, key_max, d_state, d_key_sum, d_k, d_v,
        *_strides(k), *_strides(v), mask_stride, *_strides(d_k), *_strides(d_v),
        heads, n, d, num_features, d**-0.25, HAS_MASK=mask is not None, **key_options,
    )  # fmt: skip
    return d_qkv


@_favor_backward.register_fake
def _(d_out, out, qkv, w, mask, num_features, state, key_sum, key_max, row_max, row_den):
    return _token_major(*qkv.shape, like=qkv, dtype=qkv.dtype, packed=True)


def _setup_context(ctx, inputs, output) -> None:
    qkv, w, mask, num_features = inputs
    out, state, key_sum, key_max, row_max, row_den = output
    ctx.num_features = num_features
    ctx.save_for_backward(out, qkv, w, mask, state, key_sum, key_max, row_max, row_den)


def _backward(ctx, d_out, *_unused):
    out, qkv, w, mask, *saved = ctx.saved_tensors
    return _favor_backward(d_out, out, qkv, w, mask, ctx.num_features, *saved), None, None, None


_favor_forward.register_autograd(_backward, setup_context=_setup_context)


def fused_favor_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, projection: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Non-causal FAVOR+ attention ``φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1)`` without materialising φ.

    Equal (up to rounding) to :func:`.favor.favor_attention` ``(q, k, v, ω, mask)``; the output has v's dtype
    (stored token-major, see :func:`fused_favor_attention_packed`, which a layer holding one qkv tensor calls
    instead: here q, k, v are stacked into one first). Gradients flow to q, k and v, not to ω.
    """
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(
            f"q, k, v must share one shape (batch, heads, seq_len, head_dim), got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    return fused_favor_attention_packed(torch.stack([q, k, v]), projection, mask)


def fused_favor_attention_packed(
    qkv: torch.Tensor, projection: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """:func:`fused_favor_attention` of ``q, k, v = qkv`` (``(3, B, H, N, D)``, e.g. a view of a qkv projection).

    The output ``(B, H, N, D)`` is stored as ``(B, N, H, D)`` and the gradient of ``qkv`` as ``(B, N, 3, H, D)``,
    so that with a projection's ``(B, N, 3·H·D)`` output as ``qkv`` neither the head merge after the kernel nor
    the gradient into the projection copies anything.
    """
    if qkv.dim() != 5 or qkv.shape[0] != 3:
        raise ValueError(f"qkv must have shape (3, batch, heads, seq_len, head_dim), got {tuple(qkv.shape)}")
    batch, n, head_dim = qkv.shape[1], qkv.shape[3], qkv.shape[4]
    if projection.dim() != 2 or projection.shape[1] != head_dim:
        raise ValueError(f"projection must have shape (num_features, {head_dim}), got {tuple(projection.shape)}")
    if mask is not None and mask.shape != (batch, n):
        raise ValueError(f"mask must have shape (batch, seq_len) = {(batch, n)}, got {tuple(mask.shape)}")
    num_features = projection.shape[0]
    block_d, f_pad = _padded_sizes(head_dim, num_features)
    padding = (0, block_d - head_dim, 0, f_pad - num_features)
    w = torch.nn.functional.pad(kernel_projection(projection, qkv.dtype), padding)  # whole tiles; kernels mask the padded features
    with torch.autocast(device_type=qkv.device.type, enabled=False):
        return _favor_forward(_unit_stride_rows(qkv), w.contiguous(), mask, num_features)[0]


def kernel_projection(projection: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The ω the kernels use for inputs of ``dtype``: for bf16/fp16 inputs rounded to bf16 values (held in the input
    dtype), which the logits' tensor-core products then take exactly; float32 ω for float32 inputs.

    The rounding is a perturbation of 2⁻⁹ relative to one draw of random features, and every path that gets the
    rounded ω computes the same estimator: :class:`~..linear.performer.PerformerAttention` draws its ω rounded so."""
    if dtype == torch.float32:
        return projection.float()
    return projection.to(torch.bfloat16).to(dtype)
