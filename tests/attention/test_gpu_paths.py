"""Every mechanism on the GPU computes what it computes on the CPU (fp32 and bf16), forward and backward.

The CPU paths are proven against dense / sequential references in the other test files; here each GPU path
(FlexAttention for local_global, SDPA's CUDA kernels, the scans on CUDA) is checked against the same module run
on the CPU in float64 with identical weights. Skipped without CUDA.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CONF = Path(__file__).resolve().parents[2] / "conf" / "attention"
NAMES = sorted(p.stem for p in CONF.glob("*.yaml"))
# bf16 has 8 bits of mantissa: relative errors of a few 1e-3 per op accumulate over projections and softmax
TOLERANCE = {torch.float32: 2e-3, torch.bfloat16: 3e-2}


def build(name: str):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    if "window_size" in cfg:
        cfg.window_size = 64
    torch.manual_seed(0)
    return instantiate(cfg)(dim=128, num_heads=2).eval()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", NAMES)
def test_gpu_path_matches_cpu_float64(name: str, dtype: torch.dtype) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu = build(name).double()
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
