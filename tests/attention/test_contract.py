"""The shared contract every attention choice must honour; a new conf/attention/<name>.yaml is picked up here.

Each mechanism is built from its YAML (as the model builds it) at tiny sizes, then checked for shapes, padding,
gradients, causality where it claims it, and clear errors on bad input.
"""

from __future__ import annotations

import pytest
import torch

from hierarchicalvlm.attention import SequenceMixer, build_mechanism, mechanism_names
from hierarchicalvlm.attention.registry import mechanism_config

NAMES = mechanism_names()
DIM, HEADS = 32, 4
# keep the sparse patterns non-trivial at the tiny lengths used here
SMALL = {"window_size": 6, "num_global_tokens": 2, "num_features": 64, "chunk_size": 8}


def build(name: str, **overrides) -> SequenceMixer:
    cfg = mechanism_config(name)
    small = {key: value if key != "num_global_tokens" or cfg[key] else 0 for key, value in SMALL.items() if key in cfg}
    torch.manual_seed(0)
    return build_mechanism(name, DIM, HEADS, **{**small, **overrides}).eval()


@pytest.mark.parametrize("name", NAMES)
def test_the_plain_pytorch_kernel_computes_what_auto_computes(name: str) -> None:
    """Every mechanism has the ``kernel`` knob; ``torch`` (the reference path) and ``auto`` agree on the CPU."""
    x = torch.randn(2, 29, DIM)
    mask = torch.ones(2, 29, dtype=torch.bool)
    mask[1, 20:] = False
    auto, plain = build(name, kernel="auto"), build(name, kernel="torch")
    assert plain.kernel == "torch"
    torch.testing.assert_close(plain(x, mask), auto(x, mask), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_finite(name: str) -> None:
    x = torch.randn(2, 37, DIM)
    out = build(name)(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_padding_never_changes_real_tokens(name: str) -> None:
    mixer = build(name)
    x = torch.randn(1, 23, DIM)
    reference = mixer(x)
    padded = torch.cat([x, 100 * torch.randn(1, 9, DIM)], dim=1)
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[:, :23] = True
    out = mixer(padded, mask)
    torch.testing.assert_close(out[:, :23], reference, rtol=1e-4, atol=1e-5)
    assert (out[:, 23:] == 0).all(), "outputs at padded positions must be zero"


CAUSAL_CASES = [(n, c) for n in NAMES for c in (False, True) if not c or build(n).supports_causal]


@pytest.mark.parametrize(("name", "causal"), CAUSAL_CASES)
def test_values_at_masked_positions_never_matter_even_inside_the_sequence(name: str, causal: bool) -> None:
    """Holes in the mask, not just padding at the end: whatever the masked tokens hold, real tokens' outputs
    stay the same (scans must carry their state across a hole unchanged)."""
    mixer = build(name, causal=causal)
    mask = torch.ones(2, 24, dtype=torch.bool)
    mask[0, 5:9] = False
    mask[1, 14:15] = False
    x = torch.randn(2, 24, DIM)
    other = torch.where(mask.unsqueeze(-1), x, 10 * torch.randn(2, 24, DIM))
    torch.testing.assert_close(mixer(other, mask), mixer(x, mask), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_batch_rows_are_independent_and_mask_per_row(name: str) -> None:
    mixer = build(name)
    x = torch.randn(2, 19, DIM)
    mask = torch.ones(2, 19, dtype=torch.bool)
    mask[1, 11:] = False
    out = mixer(x, mask)
    torch.testing.assert_close(out[0], mixer(x[:1])[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[1, :11], mixer(x[1:, :11])[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_inputs_and_parameters(name: str) -> None:
    mixer = build(name).train()
    x = torch.randn(2, 21, DIM, requires_grad=True)
    mask = torch.ones(2, 21, dtype=torch.bool)
    mask[0, 15:] = False
    mixer(x, mask).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    # exactly zero for the attention kernels; rounding-level (1e-12) for scans whose decay passes through padding
    assert x.grad[0, 15:].abs().max() <= 1e-6 * x.grad[0, :15].abs().max(), "padded inputs must get no gradient"
    for pname, param in mixer.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), f"no/invalid gradient for {pname}"


@pytest.mark.parametrize("name", [n for n in NAMES if build(n).supports_causal])
def test_causal_mode_never_looks_ahead(name: str) -> None:
    mixer = build(name, causal=True)
    x = torch.randn(1, 30, DIM)
    y = x.clone()
    y[:, 17:] = torch.randn(1, 13, DIM)
    torch.testing.assert_close(mixer(x)[:, :17], mixer(y)[:, :17], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_clear_errors(name: str) -> None:
    mixer = build(name)
    with pytest.raises(ValueError, match="shape"):
        mixer(torch.randn(4, DIM))
    with pytest.raises(ValueError, match="dim"):
        mixer(torch.randn(1, 8, DIM + 1))
    with pytest.raises(ValueError, match="mask"):
        mixer(torch.randn(1, 8, DIM), torch.ones(1, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="divisible"):
        build_mechanism(name, dim=30, num_heads=4)
    with pytest.raises(ValueError, match="kernel must be one of"):
        build(name, kernel="fastest")


def test_split_heads_gives_the_rearranged_views_and_their_gradients() -> None:
    """The token-major split is the einops split as values and as gradients, and copies nothing."""
    from einops import rearrange

    from hierarchicalvlm.attention.base import split_heads

    torch.manual_seed(0)
    qkv = torch.randn(2, 5, 3 * 4 * 3, dtype=torch.float64, requires_grad=True)
    upstream = [torch.randn(2, 4, 5, 3, dtype=torch.float64) for _ in range(3)]
    ours = split_heads(qkv, num_heads=4)
    reference = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=4).unbind(0)
    for got, want in zip(ours, reference):
        assert got.shape == (2, 4, 5, 3) and torch.equal(got, want)
        assert got.untyped_storage().data_ptr() == qkv.untyped_storage().data_ptr()
    (grad_ours,) = torch.autograd.grad(ours, qkv, upstream)
    (grad_reference,) = torch.autograd.grad(reference, qkv, upstream)
    assert torch.equal(grad_ours, grad_reference)
