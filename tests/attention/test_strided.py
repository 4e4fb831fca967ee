"""StridedAttention equals dense attention over the explicit strided mask (forward, backward); it is sub-quadratic."""

from __future__ import annotations

from typing import Optional

import pytest
import torch
from einops import rearrange

from hierarchicalvlm.attention.full import FullAttention
from hierarchicalvlm.attention.ops.reference import dense_attention, strided_mask, with_key_padding
from hierarchicalvlm.attention.sparse import StridedAttention
from .helpers import LargestTensor, output_and_grads, random_padding_mask, relative_error

TOL = 1e-5




def strided_reference(module: StridedAttention, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """The module's own projections around dense attention with the explicit (n, n) strided mask."""
    q, k, v = rearrange(module.qkv(x), "b n (three h d) -> three b h n d", three=3, h=module.num_heads)
    allowed = with_key_padding(strided_mask(x.shape[1], module.stride, module.causal, x.device), mask)
    out = module.proj(rearrange(dense_attention(q, k, v, allowed), "b h n d -> b n (h d)"))
    return out if mask is None else out.masked_fill(~mask[..., None], 0.0)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_matches_dense_reference_forward_and_backward(seed: int, causal: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(5, 41, (1,), generator=gen))
    stride = int(torch.randint(2, 7, (1,), generator=gen))
    if seed == 5:
        stride = n + 3  # longer than the sequence: every token only sees itself
    torch.manual_seed(seed)
    module = StridedAttention(dim=16, num_heads=2, stride=stride, causal=causal)
    x = torch.randn(3, n, 16, generator=gen)
    mask = None if seed % 3 == 0 else random_padding_mask(3, n, gen)
    weight = torch.randn(3, n, 16, generator=gen)

    out, grads = output_and_grads(lambda m, x, mask: m(x, mask), module, x, mask, weight)
    ref_out, ref_grads = output_and_grads(strided_reference, module, x, mask, weight)

    assert relative_error(out, ref_out) <= TOL, (n, stride)
    for name, g, ref_g in zip(["x", *dict(module.named_parameters())], grads, ref_grads):
        assert torch.isfinite(g).all(), name
        assert relative_error(g, ref_g) <= TOL, name


def test_padded_queries_produce_no_nan_even_without_any_real_key() -> None:
    """A sample with one real token: most padded queries have no real key in their class."""
    torch.manual_seed(0)
    module = StridedAttention(dim=8, num_heads=2, stride=3, causal=True)
    x = torch.randn(2, 11, 8, requires_grad=True)
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[0, :] = True
    mask[1, 0] = True
    out = module(x, mask)
    out.square().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert (out[1, 1:] == 0).all()
    assert (x.grad[1, 1:] == 0).all()  # padding never influences real tokens


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n, stride", [(23, 4), (26, 4), (3, 5)], ids=["tail-1", "tail-2", "stride>n"])
def test_unpadded_lengths_off_the_stride_grid_match_the_reference_without_any_mask(n, stride, causal, monkeypatch) -> None:
    """No padding but s does not divide n: classes of two lengths, each run unmasked (fast kernels), still exact."""
    from hierarchicalvlm.attention.sparse import strided as strided_module

    masks = []
    real_sdpa = strided_module.sdpa
    monkeypatch.setattr(strided_module, "sdpa", lambda *a, **kw: masks.append(kw["attn_mask"]) or real_sdpa(*a, **kw))
    gen = torch.Generator().manual_seed(n)
    torch.manual_seed(n)
    module = StridedAttention(dim=16, num_heads=2, stride=stride, causal=causal)
    x = torch.randn(2, n, 16, generator=gen)
    weight = torch.randn(2, n, 16, generator=gen)
    out, grads = output_and_grads(lambda m, x, mask: m(x, mask), module, x, None, weight)
    assert masks and all(m is None for m in masks)
    ref_out, ref_grads = output_and_grads(strided_reference, module, x, None, weight)
    assert relative_error(out, ref_out) <= TOL
    for g, ref_g in zip(grads, ref_grads):
        assert relative_error(g, ref_g) <= TOL


def test_non_causal_padding_mask_is_a_broadcast_key_mask() -> None:
    """Key padding alone is (B * stride, 1, 1, n / stride): no class-length-squared tensor (1M tokens needed 256 GiB)."""
    module = StridedAttention(dim=8, num_heads=2, stride=4)
    mask = torch.arange(103)[None] < torch.tensor([[103], [2]])
    class_mask = module._class_mask(mask, tail=1)
    assert class_mask.shape == (8, 1, 1, 26)
    x = torch.randn(2, 103, 8, requires_grad=True)
    out = module(x, mask)  # sample 1 has two real tokens: two of its four classes have no real key
    out.square().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert (out[1, 2:] == 0).all() and (x.grad[1, 2:] == 0).all()


def test_stride_one_is_full_attention() -> None:
    torch.manual_seed(0)
    strided = StridedAttention(dim=16, num_heads=4, stride=1)
    full = FullAttention(dim=16, num_heads=4)
    full.load_state_dict(strided.state_dict())
    x = torch.randn(2, 13, 16)
    mask = torch.arange(13) < torch.tensor([[13], [7]])
    assert relative_error(strided(x, mask), full(x, mask)) <= TOL



def test_no_op_produces_an_n_by_n_tensor() -> None:
    """Forward + backward of the strided path: nothing bigger than the n^2/stride per-class scores."""
    n, stride = 512, 8
    module = StridedAttention(dim=8, num_heads=1, stride=stride)
    x = torch.randn(1, n, 8, requires_grad=True)
    mask = torch.arange(n)[None] < n - 5
    with LargestTensor() as probe:
        module(x, mask).sum().backward()
    assert probe.largest <= n * n // stride

    with LargestTensor() as dense_probe:  # the probe does see a dense score matrix when there is one
        q = torch.randn(1, 1, n, 8)
        dense_attention(q, q, q, strided_mask(n, stride))
    assert dense_probe.largest >= n * n


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("causal", [False, True])
def test_cuda_matches_dense_reference(causal: bool) -> None:
    torch.manual_seed(0)
    module = StridedAttention(dim=64, num_heads=4, stride=3, causal=causal).cuda()
    x = torch.randn(2, 301, 64, device="cuda")
    mask = (torch.arange(301) < torch.tensor([[301], [150]])).cuda()
    weight = torch.randn_like(x)
    out, grads = output_and_grads(lambda m, x, mask: m(x, mask), module, x, mask, weight)
    ref_out, ref_grads = output_and_grads(strided_reference, module, x, mask, weight)
    assert relative_error(out, ref_out) <= 1e-3
    assert relative_error(grads[0], ref_grads[0]) <= 1e-3
