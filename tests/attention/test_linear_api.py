"""The public face of the linear-time mixers: exports, block, configs, and clear errors on bad input."""

from __future__ import annotations

import pytest
import torch

import hierarchicalvlm.attention as attention
from hierarchicalvlm.attention import build_mechanism
from hierarchicalvlm.attention.linear import LinearAttentionBlock, MambaLayer, PerformerAttention


def test_the_package_exports_the_same_classes() -> None:
    assert attention.PerformerAttention is PerformerAttention
    assert attention.MambaLayer is MambaLayer
    assert attention.LinearAttentionBlock is LinearAttentionBlock


@pytest.mark.parametrize(("name", "cls"), [("performer", PerformerAttention), ("mamba", MambaLayer)])
def test_config_builds_the_mixer_the_model_asks_for(name: str, cls: type) -> None:
    mixer = build_mechanism(name, dim=32, num_heads=4)
    assert type(mixer) is cls
    x = torch.randn(2, 10, 32)
    mask = torch.arange(10).expand(2, 10) < torch.tensor([[10], [6]])
    out = mixer(x, mask)
    assert out.shape == x.shape and torch.isfinite(out).all() and out[1, 6:].abs().max() == 0


@pytest.mark.parametrize(("attention_type", "mixer_cls"), [("performer", PerformerAttention), ("mamba", MambaLayer)])
def test_block_wraps_the_chosen_mixer_and_trains(attention_type: str, mixer_cls: type) -> None:
    torch.manual_seed(0)
    block = LinearAttentionBlock(dim=32, num_heads=4, attention_type=attention_type, mlp_ratio=2.0)
    assert isinstance(block.mixer, mixer_cls)
    x = torch.randn(2, 12, 32, requires_grad=True)
    out = block(x, torch.ones(2, 12, dtype=torch.bool))
    out.square().mean().backward()
    assert out.shape == x.shape and torch.isfinite(x.grad).all() and x.grad.abs().max() > 0


def test_block_forwards_mixer_arguments() -> None:
    block = LinearAttentionBlock(dim=32, num_heads=4, attention_type="mamba", d_state=6, causal=False)
    assert block.mixer.d_state == 6 and block.mixer.backward_scan is not None
    block = LinearAttentionBlock(dim=32, num_heads=4, num_features=12)
    assert isinstance(block.mixer, PerformerAttention) and block.mixer.projection.shape == (12, 8)


@pytest.mark.parametrize("attention_type", ["full", "strided", "nope"])
def test_block_refuses_other_mechanisms(attention_type: str) -> None:
    with pytest.raises(ValueError, match="attention_type"):
        LinearAttentionBlock(dim=32, num_heads=4, attention_type=attention_type)


@pytest.mark.parametrize(
    ("cls", "kwargs", "argument"),
    [
        (PerformerAttention, {"dim": 10, "num_heads": 3}, "num_heads"),
        (PerformerAttention, {"dim": 16, "num_heads": 2, "num_features": 0}, "num_features"),
        (PerformerAttention, {"dim": 16, "num_heads": 2, "chunk_size": -1}, "chunk_size"),
        (PerformerAttention, {"dim": 16, "num_heads": 2, "feature_redraw_interval": -5}, "feature_redraw_interval"),
        (PerformerAttention, {"dim": 16, "num_heads": 2, "dropout": 1.0}, "dropout"),
        (MambaLayer, {"dim": 10, "num_heads": 3}, "num_heads"),
        (MambaLayer, {"dim": 4, "num_heads": 4, "expand": 1.5}, "num_heads"),
        (MambaLayer, {"dim": 16, "num_heads": 2, "d_state": 0}, "d_state"),
        (MambaLayer, {"dim": 16, "num_heads": 2, "chunk_size": 0}, "chunk_size"),
        (MambaLayer, {"dim": 16, "num_heads": 2, "d_conv": 0}, "d_conv"),
        (MambaLayer, {"dim": 16, "num_heads": 2, "expand": -1}, "expand"),
        (MambaLayer, {"dim": 16, "num_heads": 2, "dt_min": 0.2, "dt_max": 0.1}, "dt_min"),
        (MambaLayer, {"dim": 16, "num_heads": 2, "a_min": 2.0, "a_max": 1.0}, "a_min"),
        (MambaLayer, {"dim": 16, "num_heads": 2, "a_min": 0.0}, "a_min"),
    ],
)
def test_bad_construction_arguments_name_the_argument(cls: type, kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [PerformerAttention, MambaLayer])
def test_bad_inputs_name_the_argument(cls: type) -> None:
    mixer = cls(dim=16, num_heads=2)
    with pytest.raises(ValueError, match="x must have shape"):
        mixer(torch.randn(4, 16))
    with pytest.raises(ValueError, match="feature size"):
        mixer(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match="mask must have shape"):
        mixer(torch.randn(2, 5, 16), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a bool"):
        mixer(torch.randn(2, 5, 16), torch.ones(2, 5))
