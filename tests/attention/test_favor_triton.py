"""The fused Triton FAVOR+ kernel computes what the PyTorch FAVOR+ path computes, forward and backward.

On a GPU the compiled kernels run; without one, Triton's CPU interpreter runs the same kernel code (set up in
``tests/conftest.py``). The reference is the PyTorch path, ``favor_attention``, in float64.
"""

from __future__ import annotations

import os

import pytest
import torch
from einops import rearrange

from hierarchicalvlm.attention import PerformerAttention
from hierarchicalvlm.attention.ops.favor import favor_attention, orthogonal_gaussian_projection
from hierarchicalvlm.attention.ops.favor_triton import (
    TILE_CHOICES,
    FavorKernelConfig,
    KernelLaunch,
    fused_favor_attention,
    fused_favor_attention_packed,
    fused_favor_available,
    kernel_projection,
)

from .helpers import random_padding_mask, relative_error

triton = pytest.importorskip("triton", reason="Triton is not installed")
ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("no GPU and Triton's interpreter is off", allow_module_level=True)
    if tuple(int(p) for p in triton.__version__.split(".")[:2]) < (3, 8):
        # 3.6's interpreter cannot loop over a runtime bound with numpy 2 ("only 0-dimensional arrays ...")
        pytest.skip(f"Triton {triton.__version__}'s CPU interpreter is too old (needs >= 3.8)", allow_module_level=True)
DEVICE = "cuda" if ON_GPU else "cpu"


def packed_output_and_grads(fn, qkv: torch.Tensor, heads: int, weight: torch.Tensor):
    """View a packed (b, n, 3·h·d) tensor as (3, b, h, n, d) q, k, v as the layer does; run fn on it; grads w.r.t. qkv."""
    qkv = qkv.detach().requires_grad_(True)
    out = fn(rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=heads))
    (grad,) = torch.autograd.grad((out.to(weight.dtype) * weight).sum(), [qkv])
    return out.detach(), grad


def fused_and_reference(batch, heads, n, head_dim, num_features, seed, dtype):
    """(fused output, its input gradient, float64 PyTorch-path output, its input gradient) on random inputs with
    padding; the fused kernel (the layer's packed entry) gets the inputs in ``dtype`` (values exact in that dtype)."""
    gen = torch.Generator().manual_seed(seed)
    # the kernel's ω for this dtype (rounded to bf16 values for bf16/fp16 inputs), as a layer draws it
    projection = kernel_projection(orthogonal_gaussian_projection(num_features, head_dim, generator=gen), dtype).float()
    qkv = torch.randn(batch, n, 3 * heads * head_dim, generator=gen).to(dtype).double()
    mask = random_padding_mask(batch, n, gen)
    weight = torch.randn(batch, heads, n, head_dim, generator=gen, dtype=torch.float64)
    expected, expected_grad = packed_output_and_grads(
        lambda packed: favor_attention(*packed, projection, mask), qkv, heads, weight
    )
    dev = lambda t: t.to(DEVICE)  # noqa: E731
    actual, actual_grad = packed_output_and_grads(
        lambda packed: fused_favor_attention_packed(packed, dev(projection), dev(mask)),
        dev(qkv.to(dtype)),
        heads,
        dev(weight.float()),
    )
    return actual.cpu(), actual_grad.cpu(), expected, expected_grad


@pytest.mark.parametrize(
    "batch,heads,n,head_dim,num_features",
    [(2, 2, 150, 16, 24), (1, 3, 70, 20, 40), (2, 1, 33, 64, 256), (1, 2, 700, 16, 64), (1, 1, 40, 16, 300)],
    ids=["pow2-head", "odd-sizes", "default-sizes", "several-tiles-per-split", "features-padded-to-384"],
)
def test_fused_kernel_matches_the_pytorch_path_forward_and_backward(batch, heads, n, head_dim, num_features) -> None:
    actual, actual_grad, expected, expected_grad = fused_and_reference(
        batch, heads, n, head_dim, num_features, seed=n, dtype=torch.float32
    )
    assert relative_error(actual, expected) < 1e-5
    assert relative_error(actual_grad, expected_grad) < 1e-4


@pytest.mark.parametrize("bf16_products", [True, False], ids=["bf16-products", "tf32-products"])
def test_bf16_inputs_match_the_float64_pytorch_path(bf16_products: bool, monkeypatch) -> None:
    """bf16 inputs take the low-precision operands; the result stays within bf16 rounding of the exact one."""
    from hierarchicalvlm.attention.ops import favor_triton

    monkeypatch.setattr(favor_triton, "KERNEL_CONFIG", favor_triton.FavorKernelConfig(bf16_products=bf16_products))
    actual, actual_grad, expected, expected_grad = fused_and_reference(2, 2, 300, 32, 128, seed=5, dtype=torch.bfloat16)
    assert actual.dtype == torch.bfloat16
    assert relative_error(actual.double(), expected) < 1e-2
    assert relative_error(actual_grad.double(), expected_grad) < 2e-2


@pytest.mark.parametrize(
    "config",
    [
        TILE_CHOICES["bf16"][0],
        FavorKernelConfig(per_kernel=(
            ("key_state", KernelLaunch(16, 64, 4, 1)), ("query_fwd", KernelLaunch(64, 128, 4, 2)),
            ("query_bwd_dq", KernelLaunch(32, 64, 4, 3)), ("query_bwd_state", KernelLaunch(128, 128, 4, 2)),
            ("key_bwd", KernelLaunch(16, 128, 2, 2)),
        )),  # fmt: skip
    ],
    ids=["tuned-bf16-shapes", "each-kernel-its-own"],
)
def test_launch_shapes_chosen_per_kernel_compute_the_same(config: FavorKernelConfig, monkeypatch) -> None:
    """Each kernel at a launch shape of its own (sequence tiles of different heights in the forward and the
    backward, different feature chunks, so different sequence splits) changes no result."""
    from hierarchicalvlm.attention.ops import favor_triton

    monkeypatch.setattr(favor_triton, "KERNEL_CONFIG", config)
    actual, actual_grad, expected, expected_grad = fused_and_reference(2, 2, 150, 16, 200, seed=4, dtype=torch.float32)
    assert relative_error(actual, expected) < 1e-5
    assert relative_error(actual_grad, expected_grad) < 1e-4


def test_a_launch_shape_per_kernel_reaches_its_kernel_only() -> None:
    from hierarchicalvlm.attention.ops.favor_triton import _options, _padded_sizes

    w, q = torch.zeros(256, 64), torch.zeros(1, dtype=torch.bfloat16)
    config = FavorKernelConfig(128, 128, 8, per_kernel=(("key_bwd", KernelLaunch(64, 64, 4, 2)),))
    key_bwd, query_fwd = _options(q, w, config, "key_bwd"), _options(q, w, config, "query_fwd")
    assert (key_bwd["BLOCK_N"], key_bwd["BLOCK_F"], key_bwd["num_warps"], key_bwd["num_stages"]) == (64, 64, 4, 2)
    assert (query_fwd["BLOCK_N"], query_fwd["BLOCK_F"], query_fwd["num_warps"], query_fwd["num_stages"]) == (128, 128, 8, 3)
    assert _padded_sizes(20, 300) == (32, 384)  # features: a multiple of every choice's feature chunk
    with pytest.raises(ValueError, match="unknown kernels \\['query_bwd'\\]"):
        FavorKernelConfig(per_kernel=(("query_bwd", KernelLaunch(64, 64, 4)),))


def test_sequence_without_real_keys_gives_zero_output_and_finite_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 40, 16, generator=gen, device="cpu").to(DEVICE).requires_grad_() for _ in range(3))
    mask = torch.ones(2, 40, dtype=torch.bool, device=DEVICE)
    mask[1] = False
    out = fused_favor_attention(q, k, v, orthogonal_gaussian_projection(32, 16, generator=gen).to(DEVICE), mask)
    out.square().sum().backward()
    assert out[1].abs().max() == 0
    assert out[0].abs().max() > 0
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_large_magnitude_inputs_stay_finite() -> None:
    """Logits of ±hundreds overflow exp() unless both stabilisers are applied inside the kernel.

    Compared with the PyTorch path in float32: at this scale some features underflow in float32 on both paths.
    """
    gen = torch.Generator().manual_seed(1)
    q, k, v = (30 * torch.randn(1, 2, 64, 16, generator=gen) for _ in range(3))
    projection = orthogonal_gaussian_projection(32, 16, generator=gen)
    expected = favor_attention(q, k, v, projection)
    actual = fused_favor_attention(*(t.to(DEVICE) for t in (q, k, v)), projection.to(DEVICE))
    assert torch.isfinite(actual).all()
    assert relative_error(actual.cpu(), expected) < 1e-4


def test_autocast_does_not_reach_the_kernels_bookkeeping() -> None:
    """Under bf16 autocast the merged key state must stay float32 (a bf16 state broke the GPU compile once)."""
    gen = torch.Generator().manual_seed(3)
    projection = orthogonal_gaussian_projection(64, 16, generator=gen).to(DEVICE)
    q, k, v = (torch.randn(1, 2, 100, 16, generator=gen).to(DEVICE) for _ in range(3))
    plain = fused_favor_attention(q, k, v, projection)
    with torch.autocast(device_type=DEVICE, dtype=torch.bfloat16):
        autocast = fused_favor_attention(q, k, v, projection)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, plain, rtol=0, atol=0)


def test_packed_entry_keeps_output_and_gradient_token_major_and_the_qkv_entry_agrees() -> None:
    """The layer's entry writes the output as (b, n, h, d) and d(qkv) as (b, n, 3, h, d), the projection's layouts
    (so merging heads and the projection's backward copy nothing); the q, k, v entry computes the same."""
    gen = torch.Generator().manual_seed(6)
    projection = orthogonal_gaussian_projection(32, 16, generator=gen).to(DEVICE)
    qkv = torch.randn(2, 40, 3 * 2 * 16, generator=gen).to(DEVICE).requires_grad_()
    packed = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=2)
    gradients = []
    packed.register_hook(gradients.append)
    out = fused_favor_attention_packed(packed, projection)
    out.square().sum().backward()
    assert out.transpose(1, 2).is_contiguous() and gradients[0].permute(1, 3, 0, 2, 4).is_contiguous()
    separate = fused_favor_attention(*packed, projection)
    torch.testing.assert_close(separate, out, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"qkv must have shape \(3, batch"):
        fused_favor_attention_packed(packed[:2], projection)


def test_layer_on_the_fused_path_matches_its_pytorch_path_forward_and_backward(monkeypatch) -> None:
    """The layer's own fused branch (packed entry, token-major output into the head merge and projection) against
    its PyTorch branch: output, input gradient and every parameter's gradient. Runs the interpreter on the CPU."""
    from hierarchicalvlm.attention.linear import performer

    monkeypatch.setattr(performer, "fused_favor_unavailable", lambda x: None)  # the kernel runs here (interpreter)
    torch.manual_seed(0)
    layers = {kernel: PerformerAttention(dim=32, num_heads=2, num_features=32, feature_redraw_interval=0,
                                         kernel=kernel).to(DEVICE) for kernel in ("fused", "torch")}
    layers["torch"].load_state_dict(layers["fused"].state_dict())
    x = torch.randn(2, 50, 32, device=DEVICE)
    mask = torch.ones(2, 50, dtype=torch.bool, device=DEVICE)
    mask[1, 30:] = False
    results = {}
    for kernel, layer in layers.items():
        leaf = x.clone().requires_grad_(True)
        out = layer(leaf, mask)
        out.square().sum().backward()
        results[kernel] = (out, leaf.grad, {name: p.grad for name, p in layer.named_parameters()})
    (out_fused, grad_fused, params_fused), (out_torch, grad_torch, params_torch) = results["fused"], results["torch"]
    assert relative_error(out_fused, out_torch) < 1e-5 and relative_error(grad_fused, grad_torch) < 1e-4
    for name, grad in params_torch.items():
        assert relative_error(params_fused[name], grad) < 1e-4, f"gradient of {name} differs"


def test_bad_shapes_are_rejected_before_any_kernel_runs() -> None:
    q = torch.randn(1, 2, 8, 16)
    with pytest.raises(ValueError, match="projection must have shape"):
        fused_favor_attention(q, q, q, torch.randn(32, 8))
    with pytest.raises(ValueError, match="mask must have shape"):
        fused_favor_attention(q, q, q, torch.randn(32, 16), torch.ones(1, 9, dtype=torch.bool))


def test_compiled_graph_keeps_the_kernel_without_a_break() -> None:
    gen = torch.Generator().manual_seed(2)
    projection = orthogonal_gaussian_projection(32, 16, generator=gen).to(DEVICE)
    q, k, v = (torch.randn(1, 2, 64, 16, generator=gen).to(DEVICE).requires_grad_() for _ in range(3))

    def attend(q, k, v):
        return fused_favor_attention(q, k, v, projection).square().sum()

    torch._dynamo.reset()
    compiled = torch.compile(attend, fullgraph=True, backend="aot_eager")  # fullgraph: a graph break raises
    expected_grads = torch.autograd.grad(attend(q, k, v), [q, k, v])
    actual_grads = torch.autograd.grad(compiled(q, k, v), [q, k, v])
    for actual, expected in zip(actual_grads, expected_grads):
        assert torch.allclose(actual, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_inductor_compiled_layer_math_matches_eager_forward_and_backward(dtype: torch.dtype) -> None:
    """Under Inductor (not only aot_eager) the layouts and dtypes the ops' fakes declare are the ones the real kernels
    write (Inductor asserts them; bf16 inputs keep their state in bf16), and a head merge and projection after the op
    give eager's values and gradients."""
    gen = torch.Generator().manual_seed(4)
    projection = orthogonal_gaussian_projection(32, 16, generator=gen).to(DEVICE)
    qkv = torch.randn(2, 48, 3 * 4 * 16, generator=gen).to(DEVICE, dtype).requires_grad_()
    weight = torch.randn(64, 64, generator=gen).to(DEVICE, dtype)

    def layer_math(qkv):
        packed = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=4)
        return rearrange(fused_favor_attention_packed(packed, projection), "b h n d -> b n (h d)") @ weight

    torch._dynamo.reset()
    compiled = torch.compile(layer_math, fullgraph=True)
    expected = layer_math(qkv)
    actual = compiled(qkv)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), [qkv])
    (actual_grad,) = torch.autograd.grad(actual.square().sum(), [qkv])
    assert relative_error(actual, expected) < 1e-5
    assert relative_error(actual_grad, expected_grad) < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not ON_GPU, reason="needs a CUDA device")
def test_layer_takes_the_fused_path_on_gpu_in_bf16_and_matches_the_pytorch_path(monkeypatch) -> None:
    layer = PerformerAttention(dim=128, num_heads=2, num_features=256, feature_redraw_interval=0).cuda()
    x = torch.randn(2, 1000, 128, device="cuda")
    mask = torch.ones(2, 1000, dtype=torch.bool, device="cuda")
    mask[1, 600:] = False
    assert fused_favor_available(x.bfloat16())
    assert not fused_favor_available(x)  # auto keeps fp32 on the PyTorch path (faster there; kernel=fused runs it)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fused = layer(x, mask).float()
        monkeypatch.setenv("HVLM_FAVOR_KERNEL", "torch")
        assert not fused_favor_available(x.bfloat16())
        plain = layer(x, mask).float()
    assert relative_error(fused, plain) < 2e-2


def test_tiles_that_do_not_fit_the_device_give_way_to_the_next_choice(monkeypatch) -> None:
    """A tile choice whose kernels ask more shared memory than the device has is dropped for that device."""
    from hierarchicalvlm.attention.ops import favor_triton

    big, small = favor_triton.FavorKernelConfig(128, 128, 8, False), favor_triton.FavorKernelConfig(64, 64, 4, False)
    monkeypatch.setattr(favor_triton, "TILE_CHOICES", {"fp32": (big, small), "bf16": (big,)})
    monkeypatch.setattr(favor_triton, "_too_large", set())
    tried = []

    def run(tiles):
        tried.append(tiles)
        if tiles == big:
            raise favor_triton.OutOfResources(262144, 232448, "shared memory")
        return "ran"

    device = torch.device("cpu")
    assert favor_triton.run_with_fitting_tiles(run, torch.float32, device) == "ran"
    assert favor_triton.run_with_fitting_tiles(run, torch.float32, device) == "ran"
    assert tried == [big, small, small]  # the second call starts at the tiles that fit
    with pytest.raises(RuntimeError, match="no tile choice .* fits .* attention.kernel=torch"):
        favor_triton.run_with_fitting_tiles(run, torch.bfloat16, device)


@pytest.mark.gpu
@pytest.mark.skipif(not ON_GPU, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_fused_kernel_on_gpu_with_the_tiles_of_each_precision(dtype: torch.dtype) -> None:
    """fp32 and bf16 inputs each run their own tile choice on the card (fp32: half-height tiles that fit its shared
    memory), forward and backward, against the PyTorch path in float64."""
    from hierarchicalvlm.attention.ops import favor_triton

    actual, actual_grad, expected, expected_grad = fused_and_reference(2, 2, 700, 64, 256, seed=9, dtype=dtype)
    tolerance = (1e-5, 1e-4) if dtype == torch.float32 else (1e-2, 2e-2)
    assert relative_error(actual.double(), expected) < tolerance[0]
    assert relative_error(actual_grad.double(), expected_grad) < tolerance[1]
    assert not any(tiles == favor_triton.tile_choices(dtype)[0] for _, tiles in favor_triton._too_large)


def test_split_partials_merge_to_their_sum_rescaled_to_the_largest_stabiliser() -> None:
    """The merge kernel against the PyTorch formula: each split's partial (S, z) per chunk of features is brought
    from its own maximum to the largest of its (batch·head), then summed; without maxima a plain sum."""
    from hierarchicalvlm.attention.ops.favor_triton import merge_splits

    gen = torch.Generator().manual_seed(7)
    states, sums = torch.randn(3, 5, 128, 16, generator=gen), torch.rand(3, 5, 128, generator=gen)
    maxima = 4 * torch.randn(3, 5, 2, generator=gen)  # two chunks of 64 features
    maxima[2] = -1.0e30  # a (batch·head) without any real key
    state, total, key_max = merge_splits(states.to(DEVICE), sums.to(DEVICE), maxima.to(DEVICE), 64)
    expected_max = maxima.amax(dim=(1, 2))
    weights = torch.exp2(maxima - expected_max[:, None, None]).repeat_interleave(64, dim=2)  # base-2 stabilisers
    torch.testing.assert_close(key_max.cpu(), expected_max)
    torch.testing.assert_close(state.cpu(), (states * weights[..., None]).sum(1))
    torch.testing.assert_close(total.cpu(), (sums * weights).sum(1))
    state, total, _ = merge_splits(states.to(DEVICE), sums.to(DEVICE))
    torch.testing.assert_close(state.cpu(), states.sum(1))
    torch.testing.assert_close(total.cpu(), sums.sum(1))


def test_low_precision_inputs_take_omega_rounded_to_bf16_and_the_layer_draws_it_so() -> None:
    """bf16/fp16 inputs multiply ω on bf16 tensor cores: the kernel rounds ω itself (an unrounded ω gives the same
    result as its rounded copy), and the layer's ω is drawn rounded, so its PyTorch path uses the same ω."""
    gen = torch.Generator().manual_seed(8)
    projection = orthogonal_gaussian_projection(32, 16, generator=gen)
    rounded = projection.bfloat16().float()
    assert not torch.equal(projection, rounded)
    assert torch.equal(kernel_projection(projection, torch.bfloat16).float(), rounded)
    assert torch.equal(kernel_projection(projection, torch.float16).float(), rounded)
    assert torch.equal(kernel_projection(projection, torch.float32), projection)
    q, k, v = (torch.randn(1, 2, 40, 16, generator=gen).bfloat16().to(DEVICE) for _ in range(3))
    torch.testing.assert_close(
        fused_favor_attention(q, k, v, projection.to(DEVICE)), fused_favor_attention(q, k, v, rounded.to(DEVICE)),
        rtol=0, atol=0,
    )
    layer = PerformerAttention(dim=32, num_heads=2, num_features=24)
    assert torch.equal(layer.projection, layer.projection.bfloat16().float())
    layer.redraw_features(torch.Generator().manual_seed(1))
    assert torch.equal(layer.projection, layer.projection.bfloat16().float())
