"""Helpers shared by the attention reference tests."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """‖actual − expected‖ / ‖expected‖, computed in the wider of float32 / the inputs' dtype."""
    actual, expected = actual.to(torch.promote_types(actual.dtype, torch.float32)), expected
    expected = expected.to(actual.dtype)
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-12)).item()


def output_and_grads(fn, module, x: torch.Tensor, mask, weight: torch.Tensor):
    """``fn(module, x, mask)`` and the gradients of ``(out * weight).sum()`` w.r.t. ``x`` and every parameter."""
    x = x.detach().requires_grad_(True)
    out = fn(module, x, mask)
    grads = torch.autograd.grad((out * weight).sum(), [x, *module.parameters()])
    return out.detach(), grads


def random_padding_mask(batch: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Right padding with random lengths in [1, n]; the first sample is full length."""
    lengths = torch.randint(1, n + 1, (batch,), generator=gen)
    lengths[0] = n
    return torch.arange(n) < lengths[:, None]


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an aten op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out
