"""The public API of the sparse mechanisms: imports, quick start, configs, blocks and bad-input errors."""

from __future__ import annotations

import pytest
import torch

from hierarchicalvlm.attention import (
    CrossMemoryAttention,
    HierarchicalAttentionBlock,
    LocalGlobalAttention,
    StridedAttention,
    build_mechanism,
)


def test_quick_start() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1024, 768)
    out = StridedAttention(stride=4, dim=768, num_heads=12)(x)
    assert out.shape == (2, 1024, 768) and torch.isfinite(out).all()
    out = LocalGlobalAttention(dim=768, num_heads=12)(x)
    assert out.shape == (2, 1024, 768) and torch.isfinite(out).all()
    out = CrossMemoryAttention(dim=768, num_heads=12)(torch.randn(2, 64, 768), torch.randn(2, 32, 768))
    assert out.shape == (2, 64, 768)


@pytest.mark.parametrize(
    "name, cls, expected",
    [
        ("strided", StridedAttention, {"stride": 4}),
        ("local_global", LocalGlobalAttention, {"window_size": 64, "num_global_tokens": 4}),
        ("local", LocalGlobalAttention, {"window_size": 64, "num_global_tokens": 0}),  # local_global's, but g = 0
    ],
)
def test_config_builds_the_mechanism(name: str, cls: type, expected: dict) -> None:
    mixer = build_mechanism(name, dim=32, num_heads=4)
    assert isinstance(mixer, cls)
    for key, value in expected.items():
        assert getattr(mixer, key) == value
    x, mask = torch.randn(2, 70, 32), torch.arange(70) < torch.tensor([[70], [40]])
    out = mixer(x, mask)
    assert out.shape == x.shape and (out[1, 40:] == 0).all()


@pytest.mark.parametrize("attention_type", ["strided", "local_global", "full"])
def test_hierarchical_block_runs_each_allowed_mixer(attention_type: str) -> None:
    torch.manual_seed(0)
    block = HierarchicalAttentionBlock(16, 2, attention_type=attention_type, mlp_ratio=2.0)
    assert type(block.mixer) is HierarchicalAttentionBlock.mixers[attention_type]
    x = torch.randn(2, 11, 16, requires_grad=True)
    mask = torch.arange(11) < torch.tensor([[11], [6]])
    out = block(x, mask)
    out[mask].sum().backward()
    assert out.shape == x.shape and torch.isfinite(x.grad).all()
    assert (x.grad[1, 6:] == 0).all()  # padding never influences real tokens


def test_hierarchical_block_forwards_mixer_arguments_and_rejects_other_types() -> None:
    block = HierarchicalAttentionBlock(16, 2, attention_type="strided", stride=5)
    assert block.mixer.stride == 5
    assert isinstance(HierarchicalAttentionBlock(16, 2).mixer, LocalGlobalAttention)
    with pytest.raises(ValueError, match="attention_type"):
        HierarchicalAttentionBlock(16, 2, attention_type="performer")


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: StridedAttention(dim=10, num_heads=3), "num_heads"),
        (lambda: StridedAttention(dim=8, num_heads=2, stride=0), "stride"),
        (lambda: StridedAttention(dim=8, num_heads=2, stride=-2), "stride"),
        (lambda: LocalGlobalAttention(dim=10, num_heads=4), "num_heads"),
        (lambda: LocalGlobalAttention(dim=8, num_heads=2, window_size=0), "window_size"),
        (lambda: LocalGlobalAttention(dim=8, num_heads=2, num_global_tokens=-1), "num_global_tokens"),
        (lambda: LocalGlobalAttention(dim=8, num_heads=2, dropout=1.5), "dropout"),
        (lambda: HierarchicalAttentionBlock(8, 2, attention_type="local_global", window_size=-4), "window_size"),
    ],
)
def test_bad_construction_raises_value_error_naming_the_argument(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("cls", [StridedAttention, LocalGlobalAttention])
@pytest.mark.parametrize(
    "x, mask, match",
    [
        (torch.randn(5, 8), None, "x must have shape"),
        (torch.randn(1, 2, 5, 8), None, "x must have shape"),
        (torch.randn(2, 5, 6), None, "feature size"),
        (torch.randn(2, 5, 8), torch.ones(2, 4, dtype=torch.bool), "mask must have shape"),
        (torch.randn(2, 5, 8), torch.ones(2, 5), "mask must be a bool"),
    ],
)
def test_bad_call_raises_value_error_naming_the_argument(cls: type, x, mask, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(dim=8, num_heads=2)(x, mask)


@pytest.mark.parametrize(
    "build",
    [
        lambda: StridedAttention(16, 2, stride=3, dropout=0.5),
        lambda: LocalGlobalAttention(16, 2, window_size=4, num_global_tokens=2, dropout=0.5),
        lambda: LocalGlobalAttention(16, 2, window_size=4, num_global_tokens=2, dropout=0.5, causal=True),
    ],
)
def test_dropout_is_active_in_training_and_eval_is_deterministic(build) -> None:
    torch.manual_seed(0)
    module = build()
    x = torch.randn(2, 13, 16)
    mask = torch.arange(13) < torch.tensor([[13], [9]])
    assert not torch.equal(module(x, mask), module(x, mask))
    module.eval()
    assert torch.equal(module(x, mask), module(x, mask))
