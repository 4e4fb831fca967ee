"""How much the last token of a freshly initialised MambaLayer hears from earlier tokens (docs/EMBEDDED_TASK.md).

Prints the gradient norm of the last output with respect to each earlier input (the question token's view of the
video at initialisation) and the e-folding memory horizon 1/(Δ·A) of the initial heads over many draws.

    python scripts/probes/mamba_sensitivity.py
"""

from __future__ import annotations

import math

import torch

from hierarchicalvlm.attention import MambaLayer


def sensitivity(dt_min: float, dt_max: float, length: int = 130, seed: int = 0) -> dict[int, float]:
    torch.manual_seed(seed)
    layer = MambaLayer(dim=64, num_heads=4, causal=False, dt_min=dt_min, dt_max=dt_max, d_state=64, expand=2)
    x = torch.randn(1, length, 64, requires_grad=True)
    layer(x)[0, -1].norm().backward()
    grad = x.grad[0].norm(dim=-1)
    return {back: grad[-1 - back].item() for back in (0, 1, 4, 19, 59, length - 1)}


def horizons(dt_min: float, dt_max: float, draws: int = 100_000, seed: int = 0) -> torch.Tensor:
    """1/(Δ·A) of initial heads: A ~ U[1, 16], Δ log-uniform in [dt_min, dt_max] (the layer's initialisation)."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.empty(draws).uniform_(1.0, 16.0, generator=gen)
    dt = torch.exp(torch.rand(draws, generator=gen) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    return 1.0 / (dt * A)


if __name__ == "__main__":
    for dt_min, dt_max in [(1e-3, 1e-1), (1e-4, 1e-3)]:
        h = horizons(dt_min, dt_max)
        print(f"dt in [{dt_min}, {dt_max}]: gradient norm of the last output w.r.t. the token k back:",
              {k: f"{v:.2e}" for k, v in sensitivity(dt_min, dt_max).items()})
        print(f"  initial heads' horizon 1/(dt*A): median {h.median():.0f} tokens, "
              f"P(>=128) {(h >= 128).float().mean():.3f}, P(>=1024) {(h >= 1024).float().mean():.3f}")
