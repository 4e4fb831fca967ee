"""Performer / FAVOR+: the estimator converges to softmax attention, and the fast cores equal their quadratic forms."""

from __future__ import annotations

import pytest
import torch

from hierarchicalvlm.attention.linear.performer import PerformerAttention
from hierarchicalvlm.attention.ops.favor import (
    causal_linear_attention,
    favor_features,
    linear_attention,
    orthogonal_gaussian_projection,
)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
    return weights @ v


def quadratic_linear_attention(phi_q: torch.Tensor, phi_k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """The n×n form the fast cores must reproduce: (φQ φKᵀ, lower-triangular if causal) V, row-normalised."""
    weights = phi_q @ phi_k.transpose(-2, -1)
    if causal:
        weights = weights.tril()
    return (weights @ v) / weights.sum(dim=-1, keepdim=True)


def random_features(batch: int, heads: int, n: int, head_dim: int, num_features: int, mask=None, dtype=torch.float32):
    q = torch.randn(batch, heads, n, head_dim, dtype=dtype)
    k = torch.randn(batch, heads, n, head_dim, dtype=dtype)
    projection = orthogonal_gaussian_projection(num_features, head_dim).to(dtype)
    return favor_features(q, projection, is_query=True), favor_features(k, projection, is_query=False, mask=mask)


def assert_relative_error_below(actual: torch.Tensor, expected: torch.Tensor, tolerance: float) -> None:
    """Norm-wise relative error: robust to single entries that cancel to ~0, strict on the whole tensor."""
    error = ((actual - expected).norm() / expected.norm()).item()
    assert error <= tolerance, f"relative error {error:.2e} > {tolerance:.0e}"


def random_padding(batch: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Random holes, with the first position of every row real (so every real query sees a real key)."""
    mask = torch.rand(batch, n, generator=generator) > 0.3
    mask[:, 0] = True
    return mask


# ----------------------------------------------------------------------------- the estimator


def test_projection_rows_are_orthogonal_within_blocks_with_gaussian_norms() -> None:
    head_dim = 8
    projection = orthogonal_gaussian_projection(20, head_dim, generator=torch.Generator().manual_seed(0))
    assert projection.shape == (20, head_dim)
    block = projection[:head_dim]
    gram = block @ block.T
    off_diagonal = gram - torch.diag(torch.diagonal(gram))
    assert off_diagonal.abs().max() < 1e-4 * gram.diagonal().max()
    # Norms are chi(d)-distributed: over many rows, E‖ω‖² = d.
    many = orthogonal_gaussian_projection(4096, head_dim, generator=torch.Generator().manual_seed(1))
    assert abs(many.pow(2).sum(-1).mean().item() - head_dim) < 0.3


def test_features_estimate_the_softmax_kernel_without_bias() -> None:
    torch.manual_seed(0)
    head_dim = 8
    q = 0.5 * torch.randn(1, 1, 5, head_dim, dtype=torch.float64)
    k = 0.5 * torch.randn(1, 1, 6, head_dim, dtype=torch.float64)
    projection = orthogonal_gaussian_projection(200_000, head_dim, generator=torch.Generator().manual_seed(3)).double()
    # Unstabilised features (undo the per-query and per-sequence maxima) so the absolute kernel is visible.
    x_hat_q, x_hat_k = q * head_dim**-0.25, k * head_dim**-0.25

    def raw(x_hat: torch.Tensor) -> torch.Tensor:
        return torch.exp(x_hat @ projection.T - 0.5 * x_hat.pow(2).sum(-1, keepdim=True)) / projection.shape[0] ** 0.5

    estimate = raw(x_hat_q) @ raw(x_hat_k).transpose(-2, -1)
    exact = torch.exp(q @ k.transpose(-2, -1) / head_dim**0.5)
    # Monte-Carlo error ~2% at this m; leaving out the d^(-1/4) scaling or the −‖x̂‖²/2 term is off by >10%.
    torch.testing.assert_close(estimate, exact, rtol=0.06, atol=0.0)
    # The stabilised features give the same kernel up to one factor per query row.
    stable = favor_features(q, projection, is_query=True) @ favor_features(k, projection, is_query=False).transpose(-2, -1)
    ratio = stable / estimate
    torch.testing.assert_close(ratio, ratio[..., :1].expand_as(ratio), rtol=1e-9, atol=0.0)


def test_error_versus_softmax_attention_falls_as_num_features_grows() -> None:
    torch.manual_seed(0)
    batch, heads, n, head_dim = 2, 2, 64, 16
    q = 0.7 * torch.randn(batch, heads, n, head_dim, dtype=torch.float64)
    k = 0.7 * torch.randn(batch, heads, n, head_dim, dtype=torch.float64)
    v = torch.randn(batch, heads, n, head_dim, dtype=torch.float64)
    exact = softmax_attention(q, k, v)
    generator = torch.Generator().manual_seed(1)

    def mean_relative_error(num_features: int, redraws: int = 4) -> float:
        errors = []
        for _ in range(redraws):
            projection = orthogonal_gaussian_projection(num_features, head_dim, generator=generator).double()
            approx = linear_attention(
                favor_features(q, projection, is_query=True), favor_features(k, projection, is_query=False), v
            )
            errors.append(((approx - exact).norm() / exact.norm()).item())
        return sum(errors) / len(errors)

    small, medium, large = (mean_relative_error(m) for m in (16, 256, 2048))
    assert small > medium > large
    # ~1/sqrt(m) decay: 8x the features should cut the error well beyond 1.8x; a biased estimator plateaus.
    assert large < medium / 1.8
    assert large < 0.3


def test_bf16_large_magnitude_inputs_give_finite_convex_outputs() -> None:
    torch.manual_seed(0)
    batch, heads, n, head_dim = 2, 2, 96, 32
    q = (30 * torch.randn(batch, heads, n, head_dim)).bfloat16().requires_grad_()
    k = (30 * torch.randn(batch, heads, n, head_dim)).bfloat16().requires_grad_()
    v = torch.randn(batch, heads, n, head_dim)
    projection = orthogonal_gaussian_projection(128, head_dim)
    for causal in (False, True):
        phi_q = favor_features(q, projection, is_query=True)
        phi_k = favor_features(k, projection, is_query=False)
        assert phi_q.dtype == torch.float32 and phi_k.dtype == torch.float32
        out = causal_linear_attention(phi_q, phi_k, v, chunk_size=16) if causal else linear_attention(phi_q, phi_k, v)
        assert torch.isfinite(out).all()
        # Every output row is a convex combination of value rows (or zero where every weight underflowed).
        assert (out <= v.amax(dim=-2, keepdim=True) + 1e-5).all() and (out >= v.amin(dim=-2, keepdim=True) - 1e-5).all()
        out.sum().backward()
        assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()
        q.grad = k.grad = None

    layer = PerformerAttention(dim=64, num_heads=2, num_features=64).to(torch.bfloat16)
    x = (30 * torch.randn(2, 40, 64)).bfloat16()
    for causal in (False, True):
        layer.causal = causal
        out = layer(x)
        assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


# ----------------------------------------------------------------------------- the cores vs their quadratic forms


@pytest.mark.parametrize("causal", [False, True])
def test_cores_equal_quadratic_form_forward_and_backward(causal: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    for chunk_size in (1, 8, 16):
        n = int(torch.randint(5, 50, (1,), generator=generator))
        if n % chunk_size == 0:
            n += 1
        mask = random_padding(2, n, generator)
        phi_q, phi_k = random_features(2, 3, n, 8, 32, mask=mask)
        phi_q, phi_k = phi_q.detach().requires_grad_(), phi_k.detach().requires_grad_()
        v = torch.randn(2, 3, n, 8, requires_grad=True)
        real = mask[:, None, :, None]

        fast = causal_linear_attention(phi_q, phi_k, v, chunk_size) if causal else linear_attention(phi_q, phi_k, v)
        slow = quadratic_linear_attention(phi_q, phi_k, v, causal)
        assert_relative_error_below(fast * real, slow * real, 1e-5)

        upstream = torch.randn_like(fast) * real  # padded queries are discarded downstream
        grads_fast = torch.autograd.grad(fast, (phi_q, phi_k, v), upstream)
        grads_slow = torch.autograd.grad(slow.masked_fill(~real, 0.0), (phi_q, phi_k, v), upstream)
        for fast_grad, slow_grad in zip(grads_fast, grads_slow):
            assert_relative_error_below(fast_grad, slow_grad, 1e-5)


def test_causal_core_chunk_size_does_not_change_the_result() -> None:
    torch.manual_seed(1)
    phi_q, phi_k = random_features(1, 2, 45, 8, 16)
    v = torch.randn(1, 2, 45, 8)
    outputs = [causal_linear_attention(phi_q, phi_k, v, c) for c in (1, 7, 64)]
    for out in outputs[1:]:
        assert_relative_error_below(out, outputs[0], 1e-5)


def test_cores_pass_float64_gradcheck() -> None:
    torch.manual_seed(0)
    phi_q, phi_k = random_features(1, 1, 7, 3, 4, dtype=torch.float64)
    phi_q, phi_k = phi_q.detach().requires_grad_(), phi_k.detach().requires_grad_()
    v = torch.randn(1, 1, 7, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(linear_attention, (phi_q, phi_k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: causal_linear_attention(a, b, c, 3), (phi_q, phi_k, v))

    # Through the feature map: the stabilising maxima are treated as constants, which is exact only because
    # they cancel in the normalisation — so check features and core together, not φ alone.
    q, k = (torch.randn(1, 1, 7, 3, dtype=torch.float64, requires_grad=True) for _ in range(2))
    projection = orthogonal_gaussian_projection(4, 3).double()
    mask = torch.tensor([[True, True, False, True, True, True, False]])

    def attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, causal: bool) -> torch.Tensor:
        phi_q = favor_features(queries, projection, is_query=True)
        phi_k = favor_features(keys, projection, is_query=False, mask=mask)
        return causal_linear_attention(phi_q, phi_k, values, 3) if causal else linear_attention(phi_q, phi_k, values)

    for causal in (False, True):
        assert torch.autograd.gradcheck(lambda a, b, c: attention(a, b, c, causal), (q, k, v))


# ----------------------------------------------------------------------------- the layer


@pytest.mark.parametrize("causal", [False, True])
def test_padded_keys_do_not_change_real_outputs(causal: bool) -> None:
    torch.manual_seed(0)
    layer = PerformerAttention(dim=32, num_heads=4, num_features=32, causal=causal, chunk_size=8).eval()
    x = torch.randn(2, 19, 32)
    reference = layer(x)
    junk = 10 * torch.randn(2, 6, 32)
    right = torch.cat([x, junk], dim=1)
    left = torch.cat([junk, x], dim=1)
    right_mask = torch.arange(25).expand(2, 25) < 19
    out_right = layer(right, right_mask)
    out_left = layer(left, right_mask.flip(1))
    torch.testing.assert_close(out_right[:, :19], reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_left[:, 6:], reference, rtol=1e-5, atol=1e-5)
    assert out_right[:, 19:].abs().max() == 0 and out_left[:, :6].abs().max() == 0


def test_causal_layer_does_not_see_the_future_and_noncausal_does() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 30, 32)
    perturbed = x.clone()
    perturbed[:, 17:] += torch.randn(2, 13, 32)
    causal = PerformerAttention(dim=32, num_heads=4, num_features=32, causal=True, chunk_size=8).eval()
    torch.testing.assert_close(causal(perturbed)[:, :17], causal(x)[:, :17], rtol=1e-5, atol=1e-6)
    bidirectional = PerformerAttention(dim=32, num_heads=4, num_features=32, causal=False).eval()
    assert (bidirectional(perturbed)[:, :17] - bidirectional(x)[:, :17]).abs().max() > 1e-3


def test_features_are_redrawn_every_interval_training_calls_only() -> None:
    torch.manual_seed(0)
    layer = PerformerAttention(dim=16, num_heads=2, num_features=8, feature_redraw_interval=3)
    x = torch.randn(1, 5, 16)
    first = layer.projection.clone()
    for _ in range(3):
        layer(x)
        assert torch.equal(layer.projection, first)
    layer(x)  # the 4th training call runs on a fresh draw
    second = layer.projection.clone()
    assert not torch.equal(second, first)
    layer.eval()
    for _ in range(5):
        layer(x)
    assert torch.equal(layer.projection, second)

    for never in (0, None):
        frozen = PerformerAttention(dim=16, num_heads=2, num_features=8, feature_redraw_interval=never)
        initial = frozen.projection.clone()
        for _ in range(5):
            frozen(x)
        assert torch.equal(frozen.projection, initial)
        frozen.redraw_features()
        assert not torch.equal(frozen.projection, initial)


def test_projection_is_saved_with_the_weights() -> None:
    source = PerformerAttention(dim=16, num_heads=2, num_features=8)
    target = PerformerAttention(dim=16, num_heads=2, num_features=8)
    target.load_state_dict(source.state_dict())
    x = torch.randn(1, 6, 16)
    torch.testing.assert_close(target.eval()(x), source.eval()(x))


def test_seed_example_long_sequence_runs() -> None:
    layer = PerformerAttention(dim=768, num_heads=12)
    with torch.no_grad():
        out = layer(torch.randn(1, 8192, 768))
    assert out.shape == (1, 8192, 768) and torch.isfinite(out).all()
