"""The kernel policy: the ``kernel`` knob, its environment overrides, the FLOP counter's plain paths, SDPA's kernels."""

from __future__ import annotations

import pytest
import torch

from hierarchicalvlm.attention import LocalGlobalAttention, MambaLayer, PerformerAttention
from hierarchicalvlm.attention.ops.kernel_policy import (
    fused_kernels_allowed,
    plain_pytorch_paths,
    sdpa_backends,
    use_fused,
)


def test_the_knob_decides_when_nothing_overrides_it() -> None:
    assert use_fused("auto", "flex") and use_fused("fused", "flex")
    assert not use_fused("torch", "flex")
    assert not use_fused("auto", "flex", unavailable="no GPU")  # auto falls back
    with pytest.raises(RuntimeError, match="kernel=fused, but the flex kernel cannot run this call: no GPU"):
        use_fused("fused", "flex", unavailable="no GPU")


def test_plain_pytorch_paths_turn_fused_kernels_off_and_back_on() -> None:
    """The FLOP counter's switch: inside it no mechanism may pick a fused kernel, not even with kernel=fused."""
    assert fused_kernels_allowed()
    with pytest.raises(RuntimeError, match="restored"), plain_pytorch_paths():
        assert not fused_kernels_allowed()
        assert not use_fused("fused", "ssd") and not use_fused("auto", "favor")
        raise RuntimeError("the switch must be restored even when the counted step fails")
    assert fused_kernels_allowed() and use_fused("auto", "favor")


def test_environment_overrides_replace_the_knob_of_their_family_only(monkeypatch) -> None:
    monkeypatch.setenv("HVLM_FAVOR_KERNEL", "torch")
    assert not use_fused("fused", "favor")
    assert use_fused("auto", "ssd") and use_fused("auto", "flex")
    monkeypatch.setenv("HVLM_SSD_KERNEL", "fused")
    with pytest.raises(RuntimeError, match="ssd"):
        use_fused("torch", "ssd", unavailable="mamba-ssm is not installed")
    monkeypatch.setenv("HVLM_SSD_KERNEL", "triton")
    with pytest.raises(ValueError, match="HVLM_SSD_KERNEL must be one of auto, torch, fused, got 'triton'"):
        use_fused("auto", "ssd")


@pytest.mark.parametrize(
    "build",
    [
        lambda: PerformerAttention(16, 2, num_features=8, kernel="fused"),
        lambda: MambaLayer(16, 2, d_state=4, kernel="fused"),
        lambda: LocalGlobalAttention(16, 2, window_size=4, kernel="fused"),
    ],
    ids=["performer", "mamba", "local_global"],
)
def test_kernel_fused_fails_loudly_where_it_cannot_run_but_the_flop_count_still_runs(build) -> None:
    layer = build()
    x = torch.randn(1, 9, 16)
    with pytest.raises(RuntimeError, match="kernel=fused.*CUDA"):
        layer(x)
    with plain_pytorch_paths():
        assert layer(x).shape == x.shape


@pytest.mark.parametrize(
    "kernel, masked, key_length, is_cuda, expected",
    [
        ("auto", False, 8192, True, None),  # unmasked, keys a multiple of 128: SDPA's own choice, cuDNN included
        ("auto", True, 8192, True, ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH")),
        ("auto", False, 64, True, ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH")),
        ("fused", False, 8192, True, ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")),
        ("fused", True, 64, True, ("FLASH_ATTENTION", "EFFICIENT_ATTENTION")),
        ("cudnn", True, 64, True, ("CUDNN_ATTENTION",)),  # a pinned kernel is obeyed
        ("torch", False, 8192, True, ("MATH",)),
        ("torch", False, 8192, False, ("MATH",)),
        ("cudnn", False, 64, False, None),  # on CPU, SDPA picks its own kernel unless kernel=torch
        ("fused", True, 64, False, None),
    ],
)
def test_sdpa_kernels_per_knob(kernel: str, masked: bool, key_length: int, is_cuda: bool, expected) -> None:
    assert sdpa_backends(kernel, masked, key_length, is_cuda) == expected
