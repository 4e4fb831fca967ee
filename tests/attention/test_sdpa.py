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
