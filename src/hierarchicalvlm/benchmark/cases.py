"""The cases a run measures (mechanisms, SDPA backends, our cores, external baselines) and one fwd+bwd of each."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import math
import sys
import types
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from einops import rearrange
from torch import nn

from hierarchicalvlm.attention.ops.favor import (
    causal_linear_attention,
    favor_attention,
    favor_features,
    orthogonal_gaussian_projection,
)
from hierarchicalvlm.attention.ops.favor_triton import fused_favor_attention, fused_favor_available
from hierarchicalvlm.attention.ops.flex import compiled_flex_attention
from hierarchicalvlm.attention.ops.ssd import mamba_ssm_kernel, ssd_chunked_scan

from .settings import (
    BenchSettings,
    available_mechanisms,
    build_mechanism,
    core_dtype,
    input_dtype,
    mechanism_config,
    precision_context,
)

# SDPA backends of full attention timed on GPU, each pinned through FullAttention's ``kernel`` knob (one row each;
# "full (fastest)" is the best per length).
FULL_BACKENDS = ("flash", "cudnn", "efficient")

# Shapes of the scan comparison against mamba-ssm (Mamba-2's defaults: 16 heads x 64, state 64, chunk 256).
SSD_CORE_SHAPE = dict(heads=16, head_dim=64, d_state=64, chunk_size=256)

# Our attention cores (no projections), timed with --cores.
CORE_CASES = ("favor_core", "causal_linear_attn_core", "ssd_core")

# Rows compared head to head in the "ours vs external baseline" table: (ours, baseline).
BASELINE_PAIRS = (
    ("strided", "flex_strided"),
    ("local_global", "flex_local_global"),
    ("causal_linear_attn_core", "fla_chunk_linear_attn"),
    ("fused_favor_core", "fla_chunk_linear_attn"),
    ("ssd_core", "mamba_ssm_chunk_scan"),
)


@dataclasses.dataclass(frozen=True)
class CaseSpec:
    """One row of the results: what is run and how it is labelled.

    Attributes:
        name: row label (a ``conf/attention`` name, ``full[<backend>]``, ``<...>_core`` or a baseline name).
        kind: ``"ours"`` or ``"baseline"`` (external code, only for comparison).
        scope: ``"layer"`` (with q/k/v and output projections, comparable to full attention) or ``"core"``
            (the attention operation alone, comparable only to the core it is paired with).
        family: which workload builder runs it.
        mechanism: the ``conf/attention`` name for layer rows.
        backend: the forced SDPA backend of a ``full[...]`` row.
    """

    name: str
    kind: str
    scope: str
    family: str
    mechanism: Optional[str] = None
    backend: Optional[str] = None


@dataclasses.dataclass
class Workload:
    """A prepared cell: ``step()`` runs one forward + backward and frees the gradients; ``keep`` holds the tensors."""

    step: Callable[[], None]
    keep: tuple = ()


def make_step(
    forward: Callable[[], Any],
    leaves: Sequence[torch.Tensor],
    modules: Sequence[nn.Module] = (),
    contexts: Callable[[], Sequence[contextlib.AbstractContextManager]] = tuple,
) -> Callable[[], None]:
    """Wrap ``forward`` into forward + backward from a fixed upstream gradient + freeing every gradient.

    The upstream gradient (standard normal, drawn at the first call in the output's shape and dtype) stands for the
    rest of a network, as in flash-attention's benchmarks: a step costs the layer and nothing else. (Until 2026-12-01
    a loss ``out.float().square().mean()`` was computed and differentiated: 0.68 ms of every cell at 131K tokens x
    512 on an H200, a tenth of the fastest layers' steps, and nothing any layer does.)"""
    upstream: list[torch.Tensor] = []

    def step() -> None:
        with contextlib.ExitStack() as stack:
            for context in contexts():
                stack.enter_context(context)
            out = forward()
        if isinstance(out, tuple):
            out = out[0]
        if not upstream:
            upstream.append(torch.randn_like(out))
        out.backward(upstream[0])
        for leaf in leaves:
            leaf.grad = None
        for module in modules:
            module.zero_grad(set_to_none=True)

    return step


def _leaf(*shape: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """A standard-normal input that requires grad (drawn in float32, then cast: same values in every dtype)."""
    return torch.randn(*shape, device=device, dtype=torch.float32).to(dtype).requires_grad_()


def mechanism_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    """A ``conf/attention`` mechanism on ``(batch, length, dim)``; for ``full[...]`` with that SDPA backend pinned."""
    overrides = settings.overrides
    if spec.backend is not None:
        overrides = {**overrides, spec.mechanism: {**overrides.get(spec.mechanism, {}), "kernel": spec.backend}}
    module = build_mechanism(spec.mechanism, settings.dim, settings.heads, overrides, settings.conf_dir)
    return layer_workload(module, settings, length, batch)


def layer_workload(module: nn.Module, settings: BenchSettings, length: int, batch: int) -> Workload:
    """A layer (ours or a baseline) on a ``(batch, length, dim)`` input, compiled whole with ``--compile-layers``."""
    device = settings.device
    module = module.to(device=device, dtype=input_dtype(settings.precision)).train()
    run = torch.compile(module, dynamic=False) if settings.compile_layers else module
    x = _leaf(batch, length, settings.dim, device=device, dtype=input_dtype(settings.precision))
    step = make_step(lambda: run(x), [x], [module], lambda: (precision_context(settings.precision, device),))
    return Workload(step, (module, run, x))


def _mechanism_value(name: str, key: str, settings: BenchSettings) -> Any:
    return mechanism_config(name, settings.overrides, settings.conf_dir)[key]


def _favor_core_inputs(settings: BenchSettings, length: int, batch: int) -> tuple[torch.Tensor, ...]:
    """The Performer core's inputs: the projection ω and q, k, v ``(B, H, n, d)`` leaves in the core dtype."""
    device, head_dim = settings.device, settings.dim // settings.heads
    num_features = int(_mechanism_value("performer", "num_features", settings))
    projection = orthogonal_gaussian_projection(num_features, head_dim, device=torch.device(device))
    q, k, v = (_leaf(batch, settings.heads, length, head_dim, device=device, dtype=core_dtype(settings.precision))
               for _ in range(3))
    return projection, q, k, v


def favor_core_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    """FAVOR+ features of q and k plus non-causal linear attention in PyTorch (the Performer minus projections)."""
    projection, q, k, v = _favor_core_inputs(settings, length, batch)

    step = make_step(lambda: favor_attention(q, k, v, projection), [q, k, v])
    return Workload(step, (projection, q, k, v))


def fused_favor_core_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    """The same computation as ``favor_core`` in the fused Triton kernel (the Performer's GPU path)."""
    projection, q, k, v = _favor_core_inputs(settings, length, batch)
    step = make_step(lambda: fused_favor_attention(q, k, v, projection), [q, k, v])
    return Workload(step, (projection, q, k, v))


def _feature_mapped_inputs(settings: BenchSettings, length: int, batch: int) -> tuple[torch.Tensor, ...]:
    """``phi_q, phi_k (B, H, n, m)`` and ``v (B, H, n, d)`` as the Performer's core receives them (float32)."""
    device, head_dim = settings.device, settings.dim // settings.heads
    num_features = int(_mechanism_value("performer", "num_features", settings))
    projection = orthogonal_gaussian_projection(num_features, head_dim, device=torch.device(device))
    with torch.no_grad():
        q, k = (torch.randn(batch, settings.heads, length, head_dim, device=device) for _ in range(2))
        phi_q = favor_features(q, projection, is_query=True)
        phi_k = favor_features(k, projection, is_query=False)
    v = torch.randn(batch, settings.heads, length, head_dim, device=device)
    return phi_q.requires_grad_(), phi_k.requires_grad_(), v.requires_grad_()


def causal_linear_attn_core_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    """Our chunked causal linear attention on feature-mapped inputs (float32, like the Performer runs it)."""
    phi_q, phi_k, v = _feature_mapped_inputs(settings, length, batch)
    chunk_size = int(_mechanism_value("performer", "chunk_size", settings))
    step = make_step(lambda: causal_linear_attention(phi_q, phi_k, v, chunk_size), [phi_q, phi_k, v])
    return Workload(step, (phi_q, phi_k, v))


def fla_chunk_linear_attn_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    """External baseline: flash-linear-attention's ``chunk_linear_attn`` on the same feature-mapped inputs."""
    chunk_linear_attn = fla_chunk_linear_attn(settings.fla_autotune_configs)
    # fla wants (B, T, H, K); the layout change happens once, outside the timed step.
    phi_q, phi_k, v = (t.detach().transpose(1, 2).contiguous().requires_grad_()
                       for t in _feature_mapped_inputs(settings, length, batch))
    # scale=1: the features already carry FAVOR+'s scaling; normalize=True divides by phi_q . sum(phi_k) as ours does.
    step = make_step(lambda: chunk_linear_attn(phi_q, phi_k, v, scale=1.0, normalize=True), [phi_q, phi_k, v])
    return Workload(step, (phi_q, phi_k, v))


@contextlib.contextmanager
def capped_autotuning(max_configs: int) -> Iterator[None]:
    """Triton autotuners created within keep at most their first ``max_configs`` configs (0 = all of them).

    flash-linear-attention's kernels autotune over dozens of configs per shape at first call: minutes per length,
    more than one device call allows for a whole benchmark. Its kernels are declared (and their autotuners built)
    when its modules are imported, so the cap acts on the imports made inside this block."""
    from triton.runtime.autotuner import Autotuner

    original = Autotuner.__init__

    def capped(self, fn, arg_names, configs, *args, **kwargs):
        original(self, fn, arg_names, configs[:max_configs] if max_configs > 0 else configs, *args, **kwargs)

    Autotuner.__init__ = capped
    try:
        yield
    finally:
        Autotuner.__init__ = original


def fla_chunk_linear_attn(max_configs: int) -> Callable:
    """flash-linear-attention's ``chunk_linear_attn``, its kernels' autotuning capped at ``max_configs`` configs
    (the first import decides: it is the one that builds the autotuners)."""
    with capped_autotuning(max_configs):
        from fla.ops.linear_attn import chunk_linear_attn
    return chunk_linear_attn


def _scan_inputs(settings: BenchSettings, length: int, batch: int) -> dict[str, torch.Tensor]:
    """Inputs of a Mamba-2 scan at :data:`SSD_CORE_SHAPE`: x/B/C in the core dtype, dt/A/D in float32."""
    device, shape = settings.device, SSD_CORE_SHAPE
    dtype = core_dtype(settings.precision)
    heads = shape["heads"]
    dt = torch.exp(torch.empty(batch, length, heads, device=device).uniform_(math.log(1e-3), math.log(1e-1)))
    return dict(
        x=_leaf(batch, length, heads, shape["head_dim"], device=device, dtype=dtype),
        dt=dt.requires_grad_(),
        A=(-torch.empty(heads, device=device).uniform_(1.0, 16.0)).requires_grad_(),
        B=_leaf(batch, length, shape["d_state"], device=device, dtype=dtype),
        C=_leaf(batch, length, shape["d_state"], device=device, dtype=dtype),
        D=torch.ones(heads, device=device).requires_grad_(),
    )


def ssd_core_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    """Our chunked SSD scan alone (no projections, conv or gating)."""
    t = _scan_inputs(settings, length, batch)
    chunk = SSD_CORE_SHAPE["chunk_size"]
    step = make_step(
        lambda: ssd_chunked_scan(t["x"], t["dt"], t["A"], t["B"], t["C"], chunk, D=t["D"]),
        list(t.values()),
        contexts=lambda: (precision_context(settings.precision, settings.device),),
    )
    return Workload(step, tuple(t.values()))


def mamba_ssm_chunk_scan_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    """External baseline: mamba-ssm's Triton ``mamba_chunk_scan_combined`` on the same scan inputs (ngroups = 1)."""
    scan = import_mamba_chunk_scan(settings.mamba_ssm_src)
    t = _scan_inputs(settings, length, batch)
    chunk = SSD_CORE_SHAPE["chunk_size"]
    step = make_step(
        lambda: scan(t["x"], t["dt"], t["A"], t["B"].unsqueeze(2), t["C"].unsqueeze(2), chunk, D=t["D"]),
        list(t.values()),
        contexts=lambda: (precision_context(settings.precision, settings.device),),
    )
    return Workload(step, tuple(t.values()))


def allow_recompiles(limit: int = 64) -> None:
    """Let a sweep recompile FlexAttention for every length and mask.

    Past dynamo's default limit (8 per function) a compiled call silently falls back to eager FlexAttention,
    which materialises every score: minutes per step, or an OOM, instead of the fused kernel being timed.
    """
    import torch._dynamo.config as dynamo_config

    for name in ("recompile_limit", "cache_size_limit"):  # the new name, and the old one of older torch
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(getattr(dynamo_config, name), limit))


def specialize_every_length() -> None:
    """Compile every length a sweep runs in one process for that length alone, as a fresh process would.

    With dynamo's automatic dynamic shapes, a compiled function called at a second length is recompiled with the
    length symbolic, and every later length reuses that graph. FlexAttention's symbolic-length kernels were much
    slower than its static ones on an H200 (the local layer at 64K: 7.5 ms after a 16K cell in the same process,
    4.7 in a fresh one; docs/PERFORMANCE.md, issue 14), so a sweep's second and later lengths timed kernels that no
    fixed-length run uses. Off, each length compiles its own static graph (:func:`allow_recompiles` raises the
    limit on how many).
    """
    import torch._dynamo.config as dynamo_config

    dynamo_config.automatic_dynamic_shapes = False


def _flex_block_mask(mask_mod: Callable, length: int, device: str):
    from torch.nn.attention.flex_attention import create_block_mask

    try:  # compiled mask creation never materialises an n x n mask (needed at 64K)
        return create_block_mask(mask_mod, B=None, H=None, Q_LEN=length, KV_LEN=length, device=device, _compile=True)
    except TypeError:  # a torch without the private flag
        return create_block_mask(mask_mod, B=None, H=None, Q_LEN=length, KV_LEN=length, device=device)


class FlexMaskedAttention(nn.Module):
    """External baseline: the same q/k/v and output projections as our layers around FlexAttention with a mask.

    Comparable to the layer rows (and to full attention) because it pays for the same projections.
    """

    def __init__(self, dim: int, num_heads: int, block_mask) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.block_mask = block_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        out = compiled_flex_attention()(q, k, v, block_mask=self.block_mask)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


def flex_mask_mod(spec_name: str, settings: BenchSettings) -> tuple[Callable, str]:
    """The element mask of a Flex baseline, derived from our mechanism's effective knobs, and its description."""
    if spec_name == "flex_local_global":
        half = int(_mechanism_value("local_global", "window_size", settings)) // 2
        num_global = int(_mechanism_value("local_global", "num_global_tokens", settings))
        return _local_global_mask_mod(half, num_global), (
            f"|q-k| <= {half}, plus the first {num_global} tokens global (see and are seen by all)"
        )
    stride = int(_mechanism_value("strided", "stride", settings))
    return _strided_mask_mod(stride), f"(q-k) % {stride} == 0"


# One function object per mask for the whole sweep: a new closure per length would be one more recompile each.
@functools.lru_cache(maxsize=None)
def _local_global_mask_mod(half: int, num_global: int) -> Callable:
    def local_global(b, h, q_idx, kv_idx):
        return ((q_idx - kv_idx).abs() <= half) | (kv_idx < num_global) | (q_idx < num_global)

    return local_global


@functools.lru_cache(maxsize=None)
def _strided_mask_mod(stride: int) -> Callable:
    def strided(b, h, q_idx, kv_idx):
        return ((q_idx - kv_idx) % stride) == 0

    return strided


def flex_workload(spec: CaseSpec, settings: BenchSettings, length: int, batch: int) -> Workload:
    device = settings.device
    mask_mod, _ = flex_mask_mod(spec.name, settings)
    module = FlexMaskedAttention(settings.dim, settings.heads, _flex_block_mask(mask_mod, length, device))
    return layer_workload(module, settings, length, batch)


WORKLOAD_BUILDERS: dict[str, Callable[[CaseSpec, BenchSettings, int, int], Workload]] = {
    "mechanism": mechanism_workload,
    "favor_core": favor_core_workload,
    "fused_favor_core": fused_favor_core_workload,
    "causal_linear_attn_core": causal_linear_attn_core_workload,
    "ssd_core": ssd_core_workload,
    "flex": flex_workload,
    "fla": fla_chunk_linear_attn_workload,
    "mamba_ssm": mamba_ssm_chunk_scan_workload,
}


def import_mamba_chunk_scan(src: Optional[str]) -> Callable:
    """``mamba_chunk_scan_combined``: the installed mamba-ssm's (``src`` None: the ``gpu`` extra), or the one of a
    mamba-ssm source tree, without running ``mamba_ssm/__init__.py``.

    That ``__init__`` imports a compiled CUDA extension; the Triton scan does not need it.  Empty stand-in
    package modules whose ``__path__`` points at the source folders let the Triton files import each other.
    ``src`` is the ``mamba_ssm`` package folder or the folder that contains it.
    """
    if not src:
        scan = mamba_ssm_kernel()
        if scan is None:
            raise ImportError("mamba-ssm is not installed: pip install -e '.[gpu]', or pass --mamba-ssm-src PATH "
                              "(the mamba_ssm source folder)")
        return scan
    root = Path(src).expanduser().resolve()
    if (root / "mamba_ssm").is_dir():
        root = root / "mamba_ssm"
    if not (root / "ops" / "triton" / "ssd_combined.py").is_file():
        raise ImportError(f"--mamba-ssm-src {src}: no ops/triton/ssd_combined.py under {root}")
    parent = None
    packages = (("mamba_ssm", root), ("mamba_ssm.ops", root / "ops"), ("mamba_ssm.ops.triton", root / "ops" / "triton"))
    for name, folder in packages:
        module = sys.modules.get(name)
        if module is None:
            module = types.ModuleType(name)
            module.__path__ = [str(folder)]
            sys.modules[name] = module
        if parent is not None:
            setattr(parent, name.rsplit(".", 1)[1], module)
        parent = module
    return importlib.import_module("mamba_ssm.ops.triton.ssd_combined").mamba_chunk_scan_combined


def baseline_unavailable_reason(family: str, settings: BenchSettings) -> Optional[str]:
    """Why an external baseline cannot run here (``None`` if it can)."""
    if settings.device != "cuda":
        return "GPU-only baseline (run with --device cuda)"
    try:
        if family == "flex":
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: F401
        elif family == "fla":
            fla_chunk_linear_attn(settings.fla_autotune_configs)
        elif family == "mamba_ssm":
            import_mamba_chunk_scan(settings.mamba_ssm_src)
    except Exception as err:  # ImportError, or a broken optional install
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def case_catalogue(settings: BenchSettings) -> dict[str, CaseSpec]:
    """Every case this device could run, by name (``--single`` accepts any of them)."""
    catalogue: dict[str, CaseSpec] = {}
    for name in available_mechanisms(settings.conf_dir):
        catalogue[name] = CaseSpec(name, "ours", "layer", "mechanism", mechanism=name)
    if settings.device == "cuda":
        for backend in FULL_BACKENDS:
            catalogue[f"full[{backend}]"] = CaseSpec(f"full[{backend}]", "ours", "layer", "mechanism", "full", backend)
    for name in CORE_CASES:
        catalogue[name] = CaseSpec(name, "ours", "core", name)
    if settings.device == "cuda" and fused_favor_available(torch.empty(0, device="cuda", dtype=torch.bfloat16)):
        catalogue["fused_favor_core"] = CaseSpec("fused_favor_core", "ours", "core", "fused_favor_core")
    if settings.device == "cuda":
        catalogue["flex_local_global"] = CaseSpec("flex_local_global", "baseline", "layer", "flex")
        catalogue["flex_strided"] = CaseSpec("flex_strided", "baseline", "layer", "flex")
        catalogue["fla_chunk_linear_attn"] = CaseSpec("fla_chunk_linear_attn", "baseline", "core", "fla")
        catalogue["mamba_ssm_chunk_scan"] = CaseSpec("mamba_ssm_chunk_scan", "baseline", "core", "mamba_ssm")
    return catalogue


def plan_cases(settings: BenchSettings) -> tuple[list[CaseSpec], dict[str, str]]:
    """The cases of this run, and the baselines left out with the reason."""
    catalogue = case_catalogue(settings)
    cases: list[CaseSpec] = []
    pinned_by_user = "kernel" in settings.overrides.get("full", {})
    for name in settings.mechanisms:
        if name == "full" and settings.device == "cuda" and not pinned_by_user:
            cases += [catalogue[f"full[{backend}]"] for backend in FULL_BACKENDS]
        else:
            cases.append(catalogue[name])
    if settings.cores:
        cases += [catalogue[name] for name in (*CORE_CASES, "fused_favor_core") if name in catalogue]
    not_run: dict[str, str] = {}
    if settings.baselines and settings.device == "cuda":
        for name in ("flex_local_global", "flex_strided", "fla_chunk_linear_attn", "mamba_ssm_chunk_scan"):
            # a baseline left out by --skip is not imported (fla's import builds its autotuners)
            reason = None if name in settings.skip else baseline_unavailable_reason(catalogue[name].family, settings)
            if reason is None:
                cases.append(catalogue[name])
            else:
                not_run[name] = reason
    for case in [c for c in cases if c.name in settings.skip]:
        cases.remove(case)
        not_run[case.name] = "left out (--skip)"
    return cases, not_run


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an error message, shortened: what a results table can show."""
    text = str(err).strip().splitlines()
    return (text[0] if text else "")[:limit]


def check_baseline_agreement(settings: BenchSettings, planned: set[str]) -> dict[str, str]:
    """Do the core baselines compute what our cores compute?  Max |difference| / max |ours| on one small input."""
    checks: dict[str, str] = {}
    small = dataclasses.replace(settings, precision="fp32")
    torch.manual_seed(settings.seed)
    try:
        torch.set_grad_enabled(False)
        if "fla_chunk_linear_attn" in planned:
            chunk_linear_attn = fla_chunk_linear_attn(settings.fla_autotune_configs)
            phi_q, phi_k, v = (t.detach() for t in _feature_mapped_inputs(small, 512, 1))
            ours = causal_linear_attention(phi_q, phi_k, v, int(_mechanism_value("performer", "chunk_size", small)))
            theirs = chunk_linear_attn(*(t.transpose(1, 2).contiguous() for t in (phi_q, phi_k, v)), scale=1.0,
                                       normalize=True)[0].transpose(1, 2)
            checks["fla_chunk_linear_attn vs causal_linear_attn_core"] = _relative_gap(ours, theirs)
        if "fused_favor_core" in planned:
            projection, q, k, v = (t.detach() for t in _favor_core_inputs(small, 512, 1))
            ours = favor_attention(q, k, v, projection)
            checks["fused_favor_core vs favor_core"] = _relative_gap(ours, fused_favor_attention(q, k, v, projection))
        if "mamba_ssm_chunk_scan" in planned:
            scan = import_mamba_chunk_scan(settings.mamba_ssm_src)
            t = {k: v.detach() for k, v in _scan_inputs(small, 1024, 1).items()}
            chunk = SSD_CORE_SHAPE["chunk_size"]
            ours = ssd_chunked_scan(t["x"], t["dt"], t["A"], t["B"], t["C"], chunk, D=t["D"])
            theirs = scan(t["x"], t["dt"], t["A"], t["B"].unsqueeze(2), t["C"].unsqueeze(2), chunk, D=t["D"])
            checks["mamba_ssm_chunk_scan vs ssd_core"] = _relative_gap(ours, theirs)
    except Exception as err:  # noqa: BLE001 - a failed check is reported, not fatal
        checks["error"] = f"{type(err).__name__}: {first_line(err)}"
    finally:
        torch.set_grad_enabled(True)
    return checks


def _relative_gap(ours: torch.Tensor, theirs: torch.Tensor) -> str:
    gap = (ours.float() - theirs.float()).abs().max() / ours.float().abs().max().clamp_min(1e-30)
    return f"max |theirs - ours| / max |ours| = {gap.item():.2e} (fp32, small input)"
