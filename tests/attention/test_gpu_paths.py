"""Every mechanism on the GPU computes what it computes on the CPU (fp32 and bf16), forward and backward.

The CPU paths are proven against dense / sequential references in the other test files; here each GPU path
(FlexAttention for local_global, SDPA's CUDA kernels, the scans on CUDA) is checked against the same module run
on the CPU in float64 with identical weights. Skipped without CUDA.
"""

from __future__ import annotations

import copy

import pytest
import torch

from hierarchicalvlm.attention import build_mechanism, mechanism_names
from hierarchicalvlm.attention.registry import mechanism_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

NAMES = mechanism_names()
# every mechanism as its YAML builds it, and the other choices of knobs that switch to different GPU code
VARIANTS = {"mamba": ({"bidirectional_scan": "two_scans"}, {"bidirectional_scan": "split_heads"})}
CASES = [
    pytest.param(name, knobs, id="-".join([name, *map(str, knobs.values())]))
    for name in NAMES
    for knobs in VARIANTS.get(name, ({},))
]
# bf16 has 8 bits of mantissa: relative errors of a few 1e-3 per op accumulate over projections and softmax
TOLERANCE = {torch.float32: 2e-3, torch.bfloat16: 3e-2}


def build(name: str, **knobs):
    if "window_size" in mechanism_config(name):
        knobs = {"window_size": 64, **knobs}
    torch.manual_seed(0)
    return build_mechanism(name, dim=128, num_heads=2, **knobs).eval()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name, knobs", CASES)
def test_gpu_path_matches_cpu_float64(name: str, knobs: dict, dtype: torch.dtype) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu = build(name, **knobs).double()
    gpu = copy.deepcopy(cpu).to("cuda", dtype)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 700, 128, generator=gen, dtype=torch.float64)
    mask = torch.ones(2, 700, dtype=torch.bool)
    mask[1, 450:] = False
    weight = torch.randn(2, 700, 128, generator=gen, dtype=torch.float64)

    x_cpu = x.clone().requires_grad_(True)
    out_cpu = cpu(x_cpu, mask)
    (out_cpu * weight).sum().backward()

    x_gpu = x.to("cuda", dtype).requires_grad_(True)
    out_gpu = gpu(x_gpu, mask.cuda())
    (out_gpu.float() * weight.to("cuda", torch.float32)).sum().backward()

    tol = TOLERANCE[dtype]
    assert rel(out_gpu, out_cpu) < tol, f"{name} forward differs on the GPU"
    assert rel(x_gpu.grad, x_cpu.grad) < 2 * tol, f"{name} input gradient differs on the GPU"
    for (pname, p_cpu), (_, p_gpu) in zip(cpu.named_parameters(), gpu.named_parameters()):
        if p_cpu.grad is not None and p_cpu.grad.norm() > 0:
            assert rel(p_gpu.grad, p_cpu.grad) < 4 * tol, f"{name}.{pname} gradient differs on the GPU"


@pytest.mark.parametrize("groups", [0, 2], ids=["shared-B-C", "two-groups"])
def test_mamba_ssm_kernel_matches_the_sequential_recurrence(groups: int) -> None:
    """mamba-ssm's scan through our custom ops (forward and backward) against the sequential recurrence in float64;
    B and C shared by all heads ``(B, N, S)`` or by groups of heads ``(B, N, G, S)``."""
    from hierarchicalvlm.attention.ops.ssd import mamba_ssm_module, selective_scan_reference, ssd_scan

    if mamba_ssm_module() is None:
        pytest.skip("mamba-ssm is not installed")
    gen = torch.Generator().manual_seed(2)
    b, n, h, p, s = 2, 300, 4, 16, 8
    x = torch.randn(b, n, h, p, generator=gen)
    dt = torch.rand(b, n, h, generator=gen) * 0.1
    dt[1, 200:] = 0.0  # padding: the state passes through unchanged
    A = -torch.rand(h, generator=gen) - 0.5
    group_shape = (groups,) if groups else ()
    B, C = torch.randn(b, n, *group_shape, s, generator=gen), torch.randn(b, n, *group_shape, s, generator=gen)
    D = torch.randn(h, generator=gen)
    weight = torch.randn(b, n, h, p, generator=gen, dtype=torch.float64)
    reference = [t.double().requires_grad_(True) for t in (x, dt, A, B, C, D)]
    expected = selective_scan_reference(*reference[:5], D=reference[5])
    (expected * weight).sum().backward()
    leaves = [t.cuda().requires_grad_(True) for t in (x, dt, A, B, C, D)]
    out = ssd_scan(*leaves[:5], 64, D=leaves[5], kernel="fused")
    (out.double() * weight.cuda()).sum().backward()
    # TF32 products in its kernels (10-bit mantissa): the layers' fp32 tolerance; a wrong head-to-group map is O(1)
    assert rel(out, expected) < 2e-3
    for name, leaf, ref in zip(("x", "dt", "A", "B", "C", "D"), leaves, reference):
        assert rel(leaf.grad, ref.grad) < 5e-3, f"d{name} differs from the recurrence's"
