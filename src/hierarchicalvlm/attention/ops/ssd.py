"""The Mamba-2 selective scan (scalar decay per head) as plain functions: a parallel chunked form and its reference.

Per head ``h`` and time step ``t`` the state ``S_t`` (``head_dim × d_state``) follows

    S_t = exp(Δ_t · A_h) · S_{t−1} + Δ_t · x_t B_tᵀ,        y_t = S_t C_t + D_h · x_t,

with an input-dependent step ``Δ_t > 0`` (per head), a decay rate ``A_h < 0`` and ``B_t, C_t`` shared by
all heads (Mamba-2's ``ngroups = 1``) or by each of G groups of consecutive heads.  Because the decay is a scalar per head the recurrence has the
"state space duality" (SSD, Dao & Gu 2024) matrix form ``y = (L ∘ C Bᵀ) (Δ x)`` with the 1-semiseparable
decay matrix ``L[i, j] = exp(Σ_{j<k≤i} Δ_k A)``, which :func:`ssd_chunked_scan` evaluates chunk by chunk
with matrix products only (no loop over time).  :func:`selective_scan_reference` is the sequential
recurrence, kept as the ground truth and for one-token-at-a-time inference.

Shapes: ``x (B, N, H, P)``, ``dt (B, N, H)`` (already positive, e.g. after softplus), ``A (H,)``,
``B, C (B, N, S)`` (one group) or ``(B, N, G, S)`` (head ``h`` reads group ``h // (H / G)``), ``D (H,)``,
states ``(B, H, P, S)``.  A step with ``Δ = 0`` and ``x = 0`` leaves the
state untouched, which is how padded positions are made inert.  Both functions compute in float32 (float64
stays float64), with autocast off, and return ``y`` in the dtype of ``x``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F

from .kernel_policy import use_fused

ScanResult = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


def _check_scan_inputs(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor],
    initial_state: Optional[torch.Tensor],
) -> None:
    if x.dim() != 4:
        raise ValueError(f"x must have shape (batch, seq_len, heads, head_dim), got {tuple(x.shape)}")
    batch, n, heads, head_dim = x.shape
    if dt.shape != (batch, n, heads):
        raise ValueError(f"dt must have shape (batch, seq_len, heads) = {(batch, n, heads)}, got {tuple(dt.shape)}")
    if A.shape != (heads,):
        raise ValueError(f"A must have shape (heads,) = ({heads},), got {tuple(A.shape)}")
    if B.dim() not in (3, 4) or B.shape[:2] != (batch, n):
        raise ValueError(
            f"B must have shape (batch, seq_len, d_state) or (batch, seq_len, groups, d_state) with (batch, seq_len) = "
            f"{(batch, n)}, got {tuple(B.shape)}")
    if B.dim() == 4 and heads % B.shape[2] != 0:
        raise ValueError(f"B's {B.shape[2]} groups must divide the {heads} heads")
    if C.shape != B.shape:
        raise ValueError(f"C must have the shape of B {tuple(B.shape)}, got {tuple(C.shape)}")
    if D is not None and D.shape != (heads,):
        raise ValueError(f"D must have shape (heads,) = ({heads},), got {tuple(D.shape)}")
    state_shape = (batch, heads, head_dim, B.shape[-1])
    if initial_state is not None and initial_state.shape != state_shape:
        raise ValueError(f"initial_state must have shape (batch, heads, head_dim, d_state) = {state_shape}, got {tuple(initial_state.shape)}")


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def _grouped(B: torch.Tensor) -> torch.Tensor:
    """``B`` or ``C`` as ``(B, N, G, S)``: one group when given as ``(B, N, S)``."""
    return B if B.dim() == 4 else B.unsqueeze(2)


def segment_sum(a: torch.Tensor) -> torch.Tensor:
    """``(..., T) -> (..., T, T)`` with ``out[i, j] = Σ_{j<k≤i} a_k`` for ``i >= j`` and ``-inf`` above the diagonal.

    ``exp(segment_sum(A·Δ))`` is the decay from step ``j`` to step ``i`` (zero for ``j > i``).  Summing the
    masked increments directly, rather than differencing a cumulative sum, avoids cancellation.
    """
    length = a.shape[-1]
    strictly_lower = torch.ones(length, length, dtype=torch.bool, device=a.device).tril(-1)
    increments = a.unsqueeze(-1).expand(*a.shape, length).masked_fill(~strictly_lower, 0.0)
    sums = increments.cumsum(dim=-2)
    return sums.masked_fill(~strictly_lower.logical_or(torch.eye(length, dtype=torch.bool, device=a.device)), float("-inf"))


def ssd_chunked_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: Optional[torch.Tensor] = None,
    initial_state: Optional[torch.Tensor] = None,
    return_final_state: bool = False,
) -> ScanResult:
    """Parallel selective scan (SSD): same result as :func:`selective_scan_reference`, no loop over time.

    Four matrix steps over chunks of ``chunk_size`` steps: (1) outputs from inputs of the same chunk through
    the masked decay matrix; (2) each chunk's contribution to the state at its end; (3) the states at every
    chunk boundary, from a decay-weighted sum over earlier chunks (the recurrence in matrix form);
    (4) the output each step reads from the state its chunk started with.  Cost O(N·c·P) for (1),
    O(N·P·S) for (2, 4), O((N/c)²·P·S) for (3).

    Returns ``y (B, N, H, P)``, and the state after the last step when ``return_final_state``.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive number, got {chunk_size!r}")
    _check_scan_inputs(x, dt, A, B, C, D, initial_state)
    out_dtype = x.dtype
    dtype = _compute_dtype(x)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, dt, A, B, C = (t.to(dtype) for t in (x, dt, A, B, C))
        batch, n, heads, head_dim = x.shape
        B, C = _grouped(B), _grouped(C)
        groups = B.shape[2]
        pad = (-n) % chunk_size
        num_chunks = (n + pad) // chunk_size
        # Layout (B, G, H/G, C, l, ·): heads within their group, so every product below is a batched matmul
        # with B and C broadcast over the group's heads. Padding the tail with Δ = 0, x = 0 lets the state pass
        # through unchanged.
        by_group = (batch, groups, heads // groups, num_chunks, chunk_size)
        dt_hm = F.pad(dt.transpose(1, 2), (0, pad))  # (B, H, N')
        inputs = F.pad((x * dt.unsqueeze(-1)).transpose(1, 2), (0, 0, 0, pad)).reshape(*by_group, head_dim)
        Bc, Cc = (F.pad(t, (0, 0, 0, 0, 0, pad)).reshape(batch, num_chunks, chunk_size, groups, -1)
                  .permute(0, 3, 1, 2, 4).unsqueeze(2) for t in (B, C))  # (B, G, 1, C, l, S)
        log_decay = (dt_hm * A[:, None]).reshape(by_group)
        log_decay_cum = log_decay.cumsum(dim=-1)

        # (1) within chunks: y_i += Σ_{j<=i} (C_i·B_j) exp(Σ_{j<k<=i} a_k) Δ_j x_j
        within = torch.exp(segment_sum(log_decay)) * (Cc @ Bc.transpose(-2, -1))  # (B, G, H/G, C, l, l)
        y = within @ inputs  # (B, G, H/G, C, l, P)

        # (2) state each chunk adds at its own end, stored transposed as (S, P)
        decay_to_end = torch.exp(log_decay_cum[..., -1:] - log_decay_cum).unsqueeze(-1)  # (B, G, H/G, C, l, 1)
        chunk_states = Bc.transpose(-2, -1) @ (inputs * decay_to_end)  # (B, G, H/G, C, S, P)

        # (3) state at every chunk start (and after the last chunk): decay-weighted sum over earlier chunks,
        # with the initial state as "chunk −1"
        boundary_decay = torch.exp(segment_sum(F.pad(log_decay_cum[..., -1], (1, 0))))  # (B, G, H/G, C+1, C+1)
        d_state = chunk_states.shape[-2]
        states = boundary_decay[..., 1:] @ chunk_states.flatten(-2)  # (B, G, H/G, C+1, S·P)
        if initial_state is not None:
            start = initial_state.to(dtype).transpose(-2, -1).reshape(*by_group[:3], -1)  # (B, G, H/G, S·P)
            states = states + boundary_decay[..., :1] * start.unsqueeze(-2)
        states = states.unflatten(-1, (d_state, head_dim))
        final_state = states[..., -1, :, :].transpose(-2, -1).reshape(batch, heads, head_dim, d_state)

        # (4) read-out of the carried-in state: y_i += exp(Σ_{k<=i} a_k) C_i·S_start
        y = y + (Cc @ states[..., :-1, :, :]) * torch.exp(log_decay_cum).unsqueeze(-1)

        y = y.reshape(batch, heads, num_chunks * chunk_size, head_dim)[:, :, :n].transpose(1, 2)
        if D is not None:
            y = y + D.to(dtype)[:, None] * x
    y = y.to(out_dtype)
    return (y, final_state) if return_final_state else y


def selective_scan_reference(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    initial_state: Optional[torch.Tensor] = None,
    return_final_state: bool = False,
) -> ScanResult:
    """The recurrence step by step (a Python loop over time): the ground truth, and the one-token update.

    Returns ``y (B, N, H, P)``, and the state after the last step when ``return_final_state``.
    """
    _check_scan_inputs(x, dt, A, B, C, D, initial_state)
    out_dtype = x.dtype
    dtype = _compute_dtype(x)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, dt, A, B, C = (t.to(dtype) for t in (x, dt, A, B, C))
        batch, n, heads, head_dim = x.shape
        B, C = _grouped(B), _grouped(C)
        B, C = (t.repeat_interleave(heads // t.shape[2], dim=2) for t in (B, C))  # (B, N, H, S): each head's own
        if initial_state is None:
            state = x.new_zeros(batch, heads, head_dim, B.shape[-1])
        else:
            state = initial_state.to(dtype)
        outputs = []
        for t in range(n):
            decay = torch.exp(dt[:, t] * A)[..., None, None]  # (B, H, 1, 1)
            update = (dt[:, t, :, None] * x[:, t]).unsqueeze(-1) * B[:, t, :, None, :]  # (B, H, P, S)
            state = decay * state + update
            outputs.append(torch.einsum("bhps,bhs->bhp", state, C[:, t]))
        y = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape)
        if D is not None:
            y = y + D.to(dtype)[:, None] * x
    y = y.to(out_dtype)
    return (y, state) if return_final_state else y


def _import_without_package_init(package: str, module: str) -> ModuleType:
    """Import ``package.module`` without running ``package/__init__.py``.

    mamba-ssm's ``__init__`` imports its compiled CUDA extension (``selective_scan_cuda``), which an install made
    with ``MAMBA_SKIP_CUDA_BUILD=TRUE`` (the ``gpu`` extra: no CUDA compiler needed) lacks; the Triton SSD kernels
    need nothing from it, so the package is registered as a bare namespace and only the kernel's modules load."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{package} is not installed")
    if package not in sys.modules:
        bare = ModuleType(package)
        bare.__path__ = list(spec.submodule_search_locations)
        sys.modules[package] = bare
    return importlib.import_module(f"{package}.{module}")


_NOT_LOADED = object()
_mamba_ssm: object = _NOT_LOADED  # the module, None (not importable), or not looked for yet


def mamba_ssm_module() -> Optional[ModuleType]:
    """mamba-ssm's ``ops.triton.ssd_combined`` (its fused Triton SSD scan) when importable, else None.

    An optional GPU dependency (the ``gpu`` extra, ``make install`` on a machine with a GPU): on a CUDA device it is
    several times faster than the PyTorch chunked scan. Whether a layer uses it is :mod:`.kernel_policy`'s decision
    (:func:`ssd_scan`). Looked for once, kept in a module global: a compiled network reads the global as a constant
    (it would trace an ``lru_cache``'s import machinery, a graph break); each layer looks it up when built."""
    global _mamba_ssm
    if _mamba_ssm is _NOT_LOADED:
        _mamba_ssm = _load_mamba_ssm()
    return _mamba_ssm  # type: ignore[return-value]


def _load_mamba_ssm() -> Optional[ModuleType]:
    try:
        import mamba_ssm.ops.triton.ssd_combined as module
    except ImportError:  # not installed, or installed without its compiled CUDA extension
        try:
            module = _import_without_package_init("mamba_ssm", "ops.triton.ssd_combined")
        except Exception:  # noqa: BLE001 - not installed, or no Triton: the PyTorch scan serves
            return None
    return module


def mamba_ssm_kernel() -> Optional[Callable]:
    """mamba-ssm's public ``mamba_chunk_scan_combined`` (for baselines and checks), or None when not importable."""
    module = mamba_ssm_module()
    return None if module is None else module.mamba_chunk_scan_combined


# mamba-ssm's scan as custom ops (not its autograd.Function): torch.compile keeps them as opaque nodes of one
# graph, so a compiled layer or network has no graph break at the scan. B and C come grouped, (B, N, G, S), and
# every input contiguous (ssd_scan makes them so: then neither the op nor its backward copies the saved ones).
@torch.library.custom_op("hvlm::mamba_ssm_scan", mutates_args=())
def _mamba_ssm_scan(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor, chunk_size: int
) -> torch.Tensor:
    out, *_ = mamba_ssm_module()._mamba_chunk_scan_combined_fwd(x, dt, A, B, C, chunk_size, D=D)
    return out.contiguous()


@_mamba_ssm_scan.register_fake
def _(x, dt, A, B, C, D, chunk_size):
    return x.new_empty(x.shape)


@torch.library.custom_op("hvlm::mamba_ssm_scan_backward", mutates_args=())
def _mamba_ssm_scan_backward(
    d_out: torch.Tensor, out: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
    C: torch.Tensor, D: torch.Tensor, chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    dx, ddt, dA, dB, dC, dD, *_ = mamba_ssm_module()._mamba_chunk_scan_combined_bwd(
        d_out.contiguous(), x, dt, A, B, C, out, chunk_size, D=D)
    grads = (dx, ddt, dA, dB, dC, dD)
    return tuple(g.to(t.dtype).contiguous() for g, t in zip(grads, (x, dt, A, B, C, D)))


@_mamba_ssm_scan_backward.register_fake
def _(d_out, out, x, dt, A, B, C, D, chunk_size):
    return tuple(t.new_empty(t.shape) for t in (x, dt, A, B, C, D))


def _save_scan_inputs(ctx, inputs, output) -> None:
    x, dt, A, B, C, D, chunk_size = inputs
    ctx.chunk_size = chunk_size
    ctx.save_for_backward(output, x, dt, A, B, C, D)


def _scan_backward(ctx, d_out):
    out, *inputs = ctx.saved_tensors
    return (*_mamba_ssm_scan_backward(d_out, out, *inputs, ctx.chunk_size), None)


_mamba_ssm_scan.register_autograd(_scan_backward, setup_context=_save_scan_inputs)


def ssd_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: Optional[torch.Tensor] = None,
    kernel: str = "auto",
) -> torch.Tensor:
    """The training scan: mamba-ssm's Triton kernel or :func:`ssd_chunked_scan`, as the ``kernel`` knob resolves.

    Both compute the same recurrence (``tests/attention/test_gpu_paths.py`` checks the kernel against the
    sequential reference); ``B``/``C`` are shared by all heads ``(B, N, S)`` or by groups of them ``(B, N, G, S)``."""
    if not use_fused_scan(x, kernel):
        return ssd_chunked_scan(x, dt, A, B, C, chunk_size, D=D)
    D = x.new_zeros(x.shape[2], dtype=torch.float32) if D is None else D.to(torch.float32)
    with torch.autocast(device_type="cuda", enabled=False):
        inputs = (x, dt.to(torch.float32), A.to(torch.float32), _grouped(B.to(x.dtype)), _grouped(C.to(x.dtype)), D)
        return _mamba_ssm_scan(*(t.contiguous() for t in inputs), int(chunk_size))


def use_fused_scan(x: torch.Tensor, kernel: str = "auto") -> bool:
    """Whether :func:`ssd_scan` runs mamba-ssm's Triton kernel on ``x`` (``kernel=fused`` raises where it cannot)."""
    unavailable = None
    if not x.is_cuda:
        unavailable = "it runs on CUDA tensors only"
    elif mamba_ssm_module() is None:
        unavailable = "mamba-ssm is not installed (pip install -e '.[gpu]')"
    return use_fused(kernel, "ssd", unavailable)
