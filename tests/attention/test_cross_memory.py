"""CrossMemoryAttention equals dense cross-attention over the real memory tokens, plus the residual fusion."""

from __future__ import annotations

from typing import Optional

import pytest
import torch
from einops import rearrange

from hierarchicalvlm.attention import CrossMemoryAttention
from hierarchicalvlm.attention.ops.reference import dense_attention

from .helpers import random_padding_mask, relative_error

TOL = 1e-5




def cross_reference(
    module: CrossMemoryAttention,
    local: torch.Tensor,
    memory: torch.Tensor,
    local_mask: Optional[torch.Tensor],
    memory_mask: Optional[torch.Tensor],
) -> torch.Tensor:
    q = rearrange(module.q(local), "b n (h d) -> b h n d", h=module.num_heads)
    k, v = rearrange(module.kv(memory), "b m (two h d) -> two b h m d", two=2, h=module.num_heads)
    if memory_mask is None:
        allowed = torch.ones(1, 1, 1, memory.shape[1], dtype=torch.bool)
    else:
        allowed = memory_mask[:, None, None]
    # dense_attention gives zeros for a sample whose memory is all padding, and proj(0) = bias: drop that too.
    cross = module.proj(rearrange(dense_attention(q, k, v, allowed), "b h n d -> b n (h d)"))
    if memory_mask is not None:
        cross = cross * memory_mask.any(1)[:, None, None]
    out = (1 - module.fusion_ratio) * local + module.fusion_ratio * cross if module.residual else cross
    return out if local_mask is None else out.masked_fill(~local_mask[..., None], 0.0)


def output_and_grads(fn, module, local, memory, local_mask, memory_mask, weight):
    local = local.detach().requires_grad_(True)
    memory = memory.detach().requires_grad_(True)
    out = fn(module, local, memory, local_mask, memory_mask)
    grads = torch.autograd.grad((out * weight).sum(), [local, memory, *module.parameters()])
    return out.detach(), grads


@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_matches_dense_reference_forward_and_backward(seed: int, residual: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    n, m = (int(v) for v in torch.randint(3, 30, (2,), generator=gen))
    ratio = float(torch.rand((), generator=gen))
    torch.manual_seed(seed)
    module = CrossMemoryAttention(16, 4, fusion_ratio=ratio, residual=residual)
    local, memory = torch.randn(3, n, 16, generator=gen), torch.randn(3, m, 16, generator=gen)
    local_mask = None if seed == 0 else random_padding_mask(3, n, gen)
    memory_mask = None if seed == 1 else random_padding_mask(3, m, gen)
    weight = torch.randn(3, n, 16, generator=gen)

    out, grads = output_and_grads(module.__class__.__call__, module, local, memory, local_mask, memory_mask, weight)
    ref, ref_grads = output_and_grads(cross_reference, module, local, memory, local_mask, memory_mask, weight)
    assert relative_error(out, ref) <= TOL
    for name, g, ref_g in zip(["local", "memory", *dict(module.named_parameters())], grads, ref_grads):
        assert relative_error(g, ref_g) <= TOL, name


def test_fusion_is_the_stated_mix() -> None:
    torch.manual_seed(0)
    local, memory = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    fused = CrossMemoryAttention(8, 2, fusion_ratio=0.25)
    cross_only = CrossMemoryAttention(8, 2, residual=False)
    cross_only.load_state_dict(fused.state_dict())
    expected = 0.75 * local + 0.25 * cross_only(local, memory)
    assert relative_error(fused(local, memory), expected) <= TOL
    keep_local = CrossMemoryAttention(8, 2, fusion_ratio=0.0)
    assert torch.equal(keep_local(local, memory), local)


def test_all_padding_memory_reads_nothing_and_stays_finite() -> None:
    torch.manual_seed(0)
    module = CrossMemoryAttention(8, 2, fusion_ratio=0.5)
    local = torch.randn(2, 4, 8, requires_grad=True)
    memory = torch.randn(2, 6, 8, requires_grad=True)
    memory_mask = torch.tensor([[True] * 6, [False] * 6])
    out = module(local, memory, memory_mask=memory_mask)
    out.square().sum().backward()
    assert torch.allclose(out[1], 0.5 * local[1])
    assert torch.isfinite(local.grad).all() and torch.isfinite(memory.grad).all()
    assert (memory.grad[1] == 0).all()


def test_padded_memory_never_influences_the_output() -> None:
    torch.manual_seed(0)
    module = CrossMemoryAttention(8, 2)
    local, memory = torch.randn(1, 4, 8), torch.randn(1, 6, 8)
    memory_mask = torch.tensor([[True] * 4 + [False] * 2])
    changed = memory.clone()
    changed[:, 4:] = 100.0
    out = module(local, memory, memory_mask=memory_mask)
    assert torch.equal(out, module(local, changed, memory_mask=memory_mask))


def test_seed_quick_start_shape() -> None:
    out = CrossMemoryAttention(dim=768, num_heads=12)(torch.randn(2, 64, 768), torch.randn(2, 32, 768))
    assert out.shape == (2, 64, 768)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dim": 10, "num_heads": 3}, "num_heads"),
        ({"dim": 8, "num_heads": 2, "fusion_ratio": 1.5}, "fusion_ratio"),
        ({"dim": 8, "num_heads": 2, "fusion_ratio": -0.1}, "fusion_ratio"),
        ({"dim": 8, "num_heads": 2, "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_construction_raises_value_error_naming_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CrossMemoryAttention(**kwargs)


BOOL = torch.bool


@pytest.mark.parametrize(
    "local, memory, masks, match",
    [
        (torch.randn(2, 4, 8), torch.randn(2, 3, 6), {}, "memory has feature size"),
        (torch.randn(2, 4, 6), torch.randn(2, 3, 8), {}, "local has feature size"),
        (torch.randn(4, 8), torch.randn(2, 3, 8), {}, "local must have shape"),
        (torch.randn(2, 4, 8), torch.randn(3, 8), {}, "memory must have shape"),
        (torch.randn(2, 4, 8), torch.randn(3, 3, 8), {}, "batch size"),
        (torch.randn(2, 4, 8), torch.randn(2, 3, 8), {"local_mask": torch.ones(2, 3, dtype=BOOL)}, "local_mask"),
        (torch.randn(2, 4, 8), torch.randn(2, 3, 8), {"memory_mask": torch.ones(2, 4, dtype=BOOL)}, "memory_mask"),
        (torch.randn(2, 4, 8), torch.randn(2, 3, 8), {"memory_mask": torch.ones(2, 3)}, "memory_mask must be a bool"),
    ],
)
def test_bad_call_raises_value_error_naming_the_argument(local, memory, masks: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CrossMemoryAttention(8, 2)(local, memory, **masks)


def test_dropout_is_active_in_training_only() -> None:
    torch.manual_seed(0)
    module = CrossMemoryAttention(16, 2, dropout=0.5)
    local, memory = torch.randn(2, 6, 16), torch.randn(2, 9, 16)
    assert not torch.equal(module(local, memory), module(local, memory))
    module.eval()
    assert torch.equal(module(local, memory), module(local, memory))
