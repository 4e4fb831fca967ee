"""The SDPA wrapper: backend choice, and masked calls kept off cuDNN under "auto" (pytorch#196678)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hierarchicalvlm.attention.ops.sdpa import sdpa, sdpa_backend


@pytest.mark.parametrize("masked,key_length", [(True, 1024), (False, 64), (False, 1000)])
def test_auto_excludes_only_cudnn_for_masked_or_unaligned_calls(masked: bool, key_length: int) -> None:
    with sdpa_backend("auto", masked=masked, key_length=key_length):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
        assert torch.backends.cuda.math_sdp_enabled()


def test_auto_keeps_every_kernel_for_unmasked_calls_with_keys_a_multiple_of_128() -> None:
    with sdpa_backend("auto", masked=False, key_length=8192):
        assert torch.backends.cuda.cudnn_sdp_enabled() and torch.backends.cuda.flash_sdp_enabled()


def test_a_pinned_backend_is_the_only_one_enabled() -> None:
    with sdpa_backend("efficient", masked=True):
        assert torch.backends.cuda.mem_efficient_sdp_enabled()
        assert not (torch.backends.cuda.flash_sdp_enabled() or torch.backends.cuda.cudnn_sdp_enabled())


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_equals_the_plain_call(masked: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 8, generator=gen) for _ in range(3))
    mask = torch.rand(2, 1, 1, 10, generator=gen) > 0.3 if masked else None
    if mask is not None:
        mask[..., 0] = True
    torch.testing.assert_close(sdpa(q, k, v, attn_mask=mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.parametrize("mask_rows", [0, 1, 7])
def test_batches_beyond_the_cuda_grid_run_in_chunks_with_equal_values_and_gradients(
    monkeypatch: pytest.MonkeyPatch, mask_rows: int
) -> None:
    import hierarchicalvlm.attention.ops.sdpa as sdpa_module

    monkeypatch.setattr(sdpa_module, "CUDA_MAX_SEQUENCES", 6)  # 2 heads: chunks of 3 samples
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(7, 2, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.rand(mask_rows, 1, 1, 5, generator=gen) > 0.3 if mask_rows else None
    if mask is not None:
        mask[..., 0] = True
    out = sdpa(q, k, v, attn_mask=mask)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    torch.testing.assert_close(out, ref)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_more_sequences_than_the_cuda_grid_run_on_the_gpu() -> None:
    """Level 1 of a 4,096-frame video at batch 32: 32,768 clips x 4 heads (failed with 'invalid argument')."""
    q = torch.randn(32_768, 4, 16, 16, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    out = sdpa(q, q, q)
    out.float().sum().backward()
    head = F.scaled_dot_product_attention(q[:8], q[:8], q[:8])
    torch.testing.assert_close(out[:8], head)
    assert torch.isfinite(q.grad).all()
