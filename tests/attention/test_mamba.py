"""Mamba / SSD: the parallel chunked scan equals the sequential recurrence, and the layer keeps its promises."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from hierarchicalvlm.attention.linear.mamba import MambaLayer
from hierarchicalvlm.attention.ops.ssd import _import_without_package_init, segment_sum, selective_scan_reference, ssd_chunked_scan
from .helpers import relative_error


def random_scan_inputs(batch: int, n: int, heads: int, head_dim: int, d_state: int, dtype=torch.float32, generator=None):
    """Inputs in the range a trained layer produces: Δ > 0 of mixed sizes, A < 0, and a non-zero start state."""

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype)

    x = randn(batch, n, heads, head_dim)
    dt = F.softplus(randn(batch, n, heads) - 1.0)
    A = -torch.exp(randn(heads))
    B, C = randn(batch, n, d_state), randn(batch, n, d_state)
    D = randn(heads)
    initial_state = randn(batch, heads, head_dim, d_state)
    return x, dt, A, B, C, D, initial_state


def test_segment_sum_is_the_sum_over_the_half_open_segment() -> None:
    a = torch.tensor([1.0, 2.0, 4.0, 8.0])
    out = segment_sum(a)
    for i in range(4):
        for j in range(4):
            expected = a[j + 1 : i + 1].sum() if i >= j else float("-inf")
            assert out[i, j] == expected


@pytest.mark.parametrize("chunk_size", [1, 4, 16, 64])
def test_chunked_scan_equals_reference_forward_and_backward(chunk_size: int) -> None:
    generator = torch.Generator().manual_seed(chunk_size)
    n = int(torch.randint(chunk_size + 1, 3 * chunk_size + 10, (1,), generator=generator))
    if n % chunk_size == 0:
        n += 1
    inputs = [t.requires_grad_() for t in random_scan_inputs(2, n, 3, 4, 5, generator=generator)]
    y_fast, state_fast = ssd_chunked_scan(*inputs[:5], chunk_size, D=inputs[5], initial_state=inputs[6], return_final_state=True)
    y_ref, state_ref = selective_scan_reference(*inputs[:5], D=inputs[5], initial_state=inputs[6], return_final_state=True)
    assert relative_error(y_fast, y_ref) <= 1e-5
    assert relative_error(state_fast, state_ref) <= 1e-5

    upstream_y = torch.randn(y_ref.shape, generator=generator)
    upstream_state = torch.randn(state_ref.shape, generator=generator)
    grads_fast = torch.autograd.grad((y_fast * upstream_y).sum() + (state_fast * upstream_state).sum(), inputs)
    grads_ref = torch.autograd.grad((y_ref * upstream_y).sum() + (state_ref * upstream_state).sum(), inputs)
    names = ("x", "dt", "A", "B", "C", "D", "initial_state")
    for name, fast, ref in zip(names, grads_fast, grads_ref):
        assert relative_error(fast, ref) <= 1e-5, f"gradient of {name} differs"


def test_chunked_scan_without_optional_inputs_and_with_zero_steps() -> None:
    """No D, no initial state; Δ = 0 on a block of steps leaves the state (and later outputs) unchanged."""
    x, dt, A, B, C, _, _ = random_scan_inputs(1, 23, 2, 3, 4, generator=torch.Generator().manual_seed(0))
    dt[:, 5:11] = 0.0
    y_fast, state_fast = ssd_chunked_scan(x, dt, A, B, C, 8, return_final_state=True)
    y_ref, state_ref = selective_scan_reference(x, dt, A, B, C, return_final_state=True)
    assert relative_error(y_fast, y_ref) <= 1e-5 and relative_error(state_fast, state_ref) <= 1e-5
    # Skipping the Δ = 0 steps altogether gives the same state at the end.
    keep = torch.cat([torch.arange(5), torch.arange(11, 23)])
    _, state_skipped = selective_scan_reference(x[:, keep], dt[:, keep], A, B[:, keep], C[:, keep], return_final_state=True)
    torch.testing.assert_close(state_fast, state_skipped, rtol=1e-5, atol=1e-6)


def test_chunked_scan_passes_float64_gradcheck() -> None:
    inputs = tuple(
        t.requires_grad_() for t in random_scan_inputs(1, 5, 2, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    )

    def scan(x, dt, A, B, C, D, initial_state):
        return ssd_chunked_scan(x, dt, A, B, C, 2, D=D, initial_state=initial_state, return_final_state=True)

    assert torch.autograd.gradcheck(scan, inputs)


def test_bf16_inputs_are_scanned_in_float32() -> None:
    inputs = random_scan_inputs(1, 40, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    x, dt, A, B, C, D, state = inputs
    y_bf16 = ssd_chunked_scan(x.bfloat16(), dt.bfloat16(), A, B.bfloat16(), C.bfloat16(), 16, D=D, initial_state=state)
    assert y_bf16.dtype == torch.bfloat16
    y_ref = selective_scan_reference(x.bfloat16().float(), dt.bfloat16().float(), A, B.bfloat16().float(),
                                     C.bfloat16().float(), D=D, initial_state=state)
    # Only the final rounding to bf16 differs (relative 2^-8).
    assert relative_error(y_bf16.float(), y_ref) < 4e-3


def test_scan_rejects_mismatched_shapes() -> None:
    x, dt, A, B, C, D, state = random_scan_inputs(1, 6, 2, 3, 4)
    with pytest.raises(ValueError, match="dt"):
        ssd_chunked_scan(x, dt[:, :5], A, B, C, 4)
    with pytest.raises(ValueError, match="initial_state"):
        ssd_chunked_scan(x, dt, A, B, C, 4, initial_state=state[:, :1])
    with pytest.raises(ValueError, match="chunk_size"):
        ssd_chunked_scan(x, dt, A, B, C, 0)


@pytest.mark.parametrize("groups", [2, 3])
def test_grouped_chunked_scan_equals_reference_forward_and_backward(groups: int) -> None:
    """B and C shared by groups of consecutive heads (a split-heads bidirectional layer's two directions)."""
    generator = torch.Generator().manual_seed(groups)
    x, dt, A, _, _, D, initial_state = random_scan_inputs(2, 23, 6, 4, 5, generator=generator)
    B, C = torch.randn(2, 23, groups, 5, generator=generator), torch.randn(2, 23, groups, 5, generator=generator)
    inputs = [t.requires_grad_() for t in (x, dt, A, B, C, D, initial_state)]
    y_fast, state_fast = ssd_chunked_scan(*inputs[:5], 8, D=inputs[5], initial_state=inputs[6], return_final_state=True)
    y_ref, state_ref = selective_scan_reference(*inputs[:5], D=inputs[5], initial_state=inputs[6], return_final_state=True)
    assert relative_error(y_fast, y_ref) <= 1e-5 and relative_error(state_fast, state_ref) <= 1e-5
    upstream = torch.randn(y_ref.shape, generator=generator)
    for name, fast, ref in zip("x dt A B C D initial_state".split(), torch.autograd.grad((y_fast * upstream).sum(), inputs),
                               torch.autograd.grad((y_ref * upstream).sum(), inputs)):
        assert relative_error(fast, ref) <= 1e-5, f"gradient of {name} differs"
    # each group is its own scan: group g's heads equal a one-group scan of those heads with B[:, :, g], C[:, :, g]
    per_group = 6 // groups
    for g in range(groups):
        heads = slice(g * per_group, (g + 1) * per_group)
        alone = selective_scan_reference(x[:, :, heads], dt[:, :, heads], A[heads], B[:, :, g], C[:, :, g], D=D[heads],
                                         initial_state=initial_state[:, heads])
        torch.testing.assert_close(y_ref[:, :, heads], alone)
    with pytest.raises(ValueError, match="groups must divide"):
        ssd_chunked_scan(x, dt, A, B[:, :, :1].expand(2, 23, 4, 5), C[:, :, :1].expand(2, 23, 4, 5), 8)


# ----------------------------------------------------------------------------- the layer


def small_layer(causal: bool, chunk_size: int = 8, bidirectional_scan: str = "two_scans") -> MambaLayer:
    torch.manual_seed(0)  # the same weights for every chunk size
    return MambaLayer(dim=32, num_heads=4, d_state=8, chunk_size=chunk_size, causal=causal,
                      bidirectional_scan=bidirectional_scan).eval()


BIDIRECTIONAL = pytest.mark.parametrize("bidirectional_scan", ["two_scans", "split_heads"])


def test_causal_layer_does_not_see_the_future() -> None:
    layer = small_layer(causal=True)
    x = torch.randn(2, 27, 32, requires_grad=True)
    out = layer(x)
    out[:, :13].sum().backward()
    assert x.grad[:, 13:].abs().max() == 0  # outputs before t=13 do not depend on inputs from t=13 on
    assert x.grad[:, :13].abs().amax(dim=-1).min() > 0  # ...but on every earlier input


@BIDIRECTIONAL
def test_bidirectional_layer_sees_the_future(bidirectional_scan: str) -> None:
    layer = small_layer(causal=False, bidirectional_scan=bidirectional_scan)
    x = torch.randn(2, 27, 32, requires_grad=True)
    layer(x)[:, :13].sum().backward()
    assert x.grad[:, 13:].abs().amax(dim=-1).min() > 0  # every future input reaches the first outputs
    assert x.grad[:, :13].abs().amax(dim=-1).min() > 0


@pytest.mark.parametrize("causal, bidirectional_scan", [(True, "two_scans"), (False, "two_scans"), (False, "split_heads")])
def test_padding_does_not_change_real_outputs(causal: bool, bidirectional_scan: str) -> None:
    layer = small_layer(causal=causal, bidirectional_scan=bidirectional_scan)
    x = torch.randn(2, 19, 32)
    reference = layer(x)
    junk = 10 * torch.randn(2, 6, 32)
    real_first = torch.arange(25).expand(2, 25) < 19
    out_right = layer(torch.cat([x, junk], dim=1), real_first)
    out_left = layer(torch.cat([junk, x], dim=1), real_first.flip(1))
    torch.testing.assert_close(out_right[:, :19], reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_left[:, 6:], reference, rtol=1e-5, atol=1e-5)
    assert out_right[:, 19:].abs().max() == 0 and out_left[:, :6].abs().max() == 0


def test_step_reproduces_the_full_sequence_output() -> None:
    layer = small_layer(causal=True)
    x = torch.randn(2, 21, 32)
    full = layer(x)
    state = None
    outputs = []
    for t in range(x.shape[1]):
        out, state = layer.step(x[:, t], state)
        outputs.append(out)
    torch.testing.assert_close(torch.stack(outputs, dim=1), full, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="causal"):
        small_layer(causal=False).step(x[:, 0])
    with pytest.raises(ValueError, match="x_t"):
        layer.step(x[:, :2])


@BIDIRECTIONAL
def test_chunk_size_changes_speed_not_the_result(bidirectional_scan: str) -> None:
    x = torch.randn(1, 30, 32)
    outputs = [small_layer(False, chunk_size, bidirectional_scan)(x) for chunk_size in (4, 7, 64)]
    for out in outputs[1:]:
        torch.testing.assert_close(out, outputs[0], rtol=1e-5, atol=1e-5)


@BIDIRECTIONAL
def test_layer_gradients_reach_every_parameter(bidirectional_scan: str) -> None:
    layer = small_layer(causal=False, bidirectional_scan=bidirectional_scan)
    layer(torch.randn(2, 11, 32)).square().mean().backward()
    missing = [name for name, p in layer.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert not missing, f"no gradient for {missing}"


def test_split_heads_layer_is_a_forward_and_a_backward_recurrence() -> None:
    """split_heads against its definition, written out in float64: the first half of the heads run the sequential
    recurrence left to right over (x_fwd, B_fwd, C_fwd), the second half right to left over (x_bwd, B_bwd, C_bwd),
    each after its channels' causal conv in its own time order; forward and input gradient."""
    layer = small_layer(causal=False, bidirectional_scan="split_heads").double()
    x = torch.randn(2, 21, 32, dtype=torch.float64, requires_grad=True)
    scan = layer.forward_scan
    inner, heads, state, half = layer.inner_dim, layer.num_heads, layer.d_state, layer.num_heads // 2
    z, xBC, dt_raw = torch.split(layer.in_proj(x), [inner, inner + 4 * state, heads], dim=-1)
    head_dim = inner // heads

    def direction(first_head: int, group: int, reverse: bool) -> torch.Tensor:
        own_heads = slice(first_head, first_head + half)
        columns = torch.cat([torch.arange(first_head * head_dim, (first_head + half) * head_dim),  # x
                             inner + group * state + torch.arange(state),  # B of this direction
                             inner + (2 + group) * state + torch.arange(state)])  # C
        inputs, dt = xBC[..., columns], dt_raw[..., own_heads]
        if reverse:
            inputs, dt = inputs.flip(1), dt.flip(1)
        conv = F.conv1d(F.pad(inputs.transpose(1, 2), (layer.d_conv - 1, 0)), scan.conv.weight[columns],
                        scan.conv.bias[columns], groups=len(columns)).transpose(1, 2)
        xs, B, C = torch.split(F.silu(conv), [half * head_dim, state, state], dim=-1)
        y = selective_scan_reference(xs.unflatten(-1, (half, head_dim)), F.softplus(dt + scan.dt_bias[own_heads]),
                                     -torch.exp(scan.A_log[own_heads]), B, C, D=scan.D[own_heads])
        return y.flip(1) if reverse else y

    y = torch.cat([direction(0, 0, False), direction(half, 1, True)], dim=2)
    expected = layer.out_proj(F.rms_norm(y.flatten(-2) * F.silu(z), (inner,), layer.norm.weight, layer.norm.eps))
    out = layer(x)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-10)
    upstream = torch.randn_like(out)
    (grad_layer,) = torch.autograd.grad((out * upstream).sum(), x)
    (grad_reference,) = torch.autograd.grad((expected * upstream).sum(), x)
    torch.testing.assert_close(grad_layer, grad_reference, rtol=1e-9, atol=1e-10)


def test_split_heads_costs_one_scan_and_needs_an_even_head_count() -> None:
    split = MambaLayer(dim=32, num_heads=4, d_state=8, causal=False, bidirectional_scan="split_heads")
    assert split.backward_scan is None and split.forward_scan.groups == 2
    causal = MambaLayer(dim=32, num_heads=4, d_state=8, causal=True, bidirectional_scan="split_heads")
    assert causal.forward_scan.direction == "forward" and causal.bidirectional_scan is None  # causal: the knob is moot
    with pytest.raises(ValueError, match="num_heads must be even"):
        MambaLayer(dim=36, num_heads=3, d_state=8, causal=False, bidirectional_scan="split_heads")
    with pytest.raises(ValueError, match="attention.bidirectional_scan"):
        MambaLayer(dim=32, num_heads=4, causal=False, bidirectional_scan="both_ways")


def test_initial_step_sizes_lie_in_the_configured_range() -> None:
    layer = MambaLayer(dim=64, num_heads=16, dt_min=0.01, dt_max=0.05)
    dt = F.softplus(layer.forward_scan.dt_bias)
    assert (dt >= 0.01 - 1e-6).all() and (dt <= 0.05 + 1e-6).all()
    A = -torch.exp(layer.forward_scan.A_log)
    assert (A <= -1.0 + 1e-6).all() and (A >= -16.0 - 1e-5).all()  # Mamba-2's default range [1, 16]
    slow = MambaLayer(dim=64, num_heads=16, causal=False, a_min=0.01, a_max=1.0)
    for direction in (slow.forward_scan, slow.backward_scan):
        rates = torch.exp(direction.A_log)
        assert (rates >= 0.01 - 1e-7).all() and (rates <= 1.0 + 1e-6).all()


def test_mamba_ssm_kernels_load_without_the_package_init(tmp_path, monkeypatch) -> None:
    """An install without mamba-ssm's CUDA extension: its ``__init__`` fails, its Triton modules still load."""
    package = tmp_path / "fake_ssm"
    (package / "ops").mkdir(parents=True)
    (package / "__init__.py").write_text("import selective_scan_cuda_that_was_never_built\n")
    (package / "ops" / "__init__.py").write_text("")
    (package / "ops" / "scan.py").write_text("def kernel():\n    return 'triton scan'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError):
        __import__("fake_ssm.ops.scan")
    for name in [m for m in sys.modules if m.startswith("fake_ssm")]:
        monkeypatch.delitem(sys.modules, name)
    module = _import_without_package_init("fake_ssm", "ops.scan")
    assert module.kernel() == "triton scan"
    for name in [m for m in sys.modules if m.startswith("fake_ssm")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match="not installed"):
        _import_without_package_init("no_such_package_here", "ops.scan")
