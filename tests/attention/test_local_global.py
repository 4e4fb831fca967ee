"""LocalGlobalAttention (and its kernels) equal dense attention over the explicit local+global mask."""

from __future__ import annotations

from typing import Optional

import pytest
import torch
from einops import rearrange

from hierarchicalvlm.attention.ops import (
    flex_available,
    flex_local_global_attention,
    local_window_block_mask,
    local_window_attention,
)
from hierarchicalvlm.attention.ops.flex import flex_static_global_attention
from hierarchicalvlm.attention.ops.reference import dense_attention, local_global_mask, with_key_padding
from hierarchicalvlm.attention.sparse import LocalGlobalAttention
from hierarchicalvlm.attention.sparse import local_global as local_global_module
from .helpers import LargestTensor, output_and_grads, random_padding_mask, relative_error

TOL = 1e-5
needs_flex = pytest.mark.skipif(not flex_available(), reason="this torch has no FlexAttention")
# The valid (global_tokens, causal) pairs with fixed global positions (last + causal looks ahead: rejected).
FIXED_GLOBALS = [("first", False), ("first", True), ("last", False)]
FIXED_IDS = ["first", "first-causal", "last"]


def random_positions(batch: int, n: int, g: int, gen: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.randperm(n, generator=gen)[:g] for _ in range(batch)])


def local_global_reference(
    module: LocalGlobalAttention, x: torch.Tensor, mask: Optional[torch.Tensor], compute_dtype=None
) -> torch.Tensor:
    """The module's projections and global-token choice around dense attention with the explicit mask."""
    q, k, v = rearrange(module.qkv(x), "b n (three h d) -> three b h n d", three=3, h=module.num_heads)
    chosen = module.select_global_tokens(x, mask)
    positions = None
    if chosen is not None:
        positions = chosen.positions
        if chosen.value_scale is not None:
            v = v * chosen.value_scale[:, None, :, None].to(v.dtype)
    if compute_dtype is not None:
        q, k, v = q.to(compute_dtype), k.to(compute_dtype), v.to(compute_dtype)
    allowed = local_global_mask(x.shape[1], module.window_size, positions, module.causal, x.device)
    attended = dense_attention(q, k, v, with_key_padding(allowed, mask)).to(x.dtype)
    out = module.proj(rearrange(attended, "b h n d -> b n (h d)"))
    return out if mask is None else out.masked_fill(~mask[..., None], 0.0)


def check_against_reference(module, x, mask, tol=TOL, scorer_tol=1e-4) -> None:
    """Output, input gradient and every parameter gradient match the dense reference.

    The scorer's gradient is a sum of many cancelling straight-through terms, so in fp32 its
    rounding error is larger relative to its (small) size: it gets ``scorer_tol``; the float64
    test holds it to the same tight tolerance as everything else.
    """
    weight = torch.randn_like(x)
    out, grads = output_and_grads(lambda m, x, mask: m(x, mask), module, x, mask, weight)
    ref_out, ref_grads = output_and_grads(local_global_reference, module, x, mask, weight)
    assert relative_error(out, ref_out) <= tol
    for name, g, ref_g in zip(["x", *dict(module.named_parameters())], grads, ref_grads):
        assert torch.isfinite(g).all(), name
        assert relative_error(g, ref_g) <= (scorer_tol if name.startswith("global_scorer") else tol), name
    if module.global_scorer is not None:  # the straight-through factor really trains the scorer
        assert grads[-2].norm() > 0  # global_scorer.weight


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_matches_dense_reference_forward_and_backward(seed: int, causal: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(5, 49, (1,), generator=gen))
    window = int(torch.randint(1, 13, (1,), generator=gen))
    num_global = int(torch.randint(0, 5, (1,), generator=gen))
    torch.manual_seed(seed)
    module = LocalGlobalAttention(16, 2, window_size=window, num_global_tokens=num_global, causal=causal)
    x = torch.randn(3, n, 16, generator=gen)
    mask = None if seed % 4 == 0 else random_padding_mask(3, n, gen)
    check_against_reference(module, x, mask)


@pytest.mark.parametrize("causal", [False, True])
def test_matches_dense_reference_float64_including_scorer_gradient(causal: bool) -> None:
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    module = LocalGlobalAttention(16, 2, window_size=5, num_global_tokens=3, causal=causal).double()
    x = torch.randn(3, 29, 16, generator=gen, dtype=torch.float64)
    check_against_reference(module, x, random_padding_mask(3, 29, gen), tol=1e-10, scorer_tol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_window_only_matches_reference(causal: bool) -> None:
    """num_global_tokens=0 (conf/attention/local.yaml): a pure sliding window, no scorer."""
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    module = LocalGlobalAttention(16, 2, window_size=6, num_global_tokens=0, causal=causal)
    assert module.global_scorer is None and module.select_global_tokens(torch.randn(1, 4, 16)) is None
    x = torch.randn(3, 23, 16, generator=gen)
    check_against_reference(module, x, random_padding_mask(3, 23, gen))


@pytest.mark.parametrize("causal", [False, True])
def test_more_global_tokens_than_real_tokens(causal: bool) -> None:
    torch.manual_seed(0)
    module = LocalGlobalAttention(8, 2, window_size=2, num_global_tokens=5, causal=causal)
    x = torch.randn(2, 9, 8)
    mask = torch.arange(9) < torch.tensor([[9], [2]])
    check_against_reference(module, x, mask)


def test_window_wider_than_sequence_is_full_attention() -> None:
    torch.manual_seed(0)
    module = LocalGlobalAttention(8, 2, window_size=200, num_global_tokens=2)
    x = torch.randn(2, 20, 8)
    check_against_reference(module, x, torch.arange(20) < torch.tensor([[20], [11]]))


def test_global_tokens_are_real_and_the_top_scored() -> None:
    torch.manual_seed(0)
    module = LocalGlobalAttention(8, 2, window_size=4, num_global_tokens=3)
    x = torch.randn(2, 12, 8)
    mask = torch.arange(12) < torch.tensor([[12], [6]])
    chosen = module.select_global_tokens(x, mask)
    score = module.global_scorer(x).squeeze(-1).masked_fill(~mask, float("-inf"))
    for b in range(2):
        assert mask[b, chosen.positions[b]].all()
        assert set(chosen.positions[b].tolist()) == set(score[b].topk(3).indices.tolist())
    assert (chosen.value_scale == 1).all()  # the straight-through factor is exactly 1 forward


def test_causal_global_tokens_are_the_leading_positions_and_never_look_ahead() -> None:
    """A learned top-k would let future tokens pick the past's global tokens; causal mode uses fixed sinks."""
    torch.manual_seed(0)
    module = LocalGlobalAttention(16, 2, window_size=4, num_global_tokens=3, causal=True)
    assert module.global_scorer is None
    x = torch.randn(2, 30, 16)
    chosen = module.select_global_tokens(x)
    assert chosen.positions.tolist() == [[0, 1, 2]] * 2 and chosen.value_scale is None
    y = x.clone()
    y[:, 17:] = 10 * torch.randn(2, 13, 16)
    torch.testing.assert_close(module(x)[:, :17], module(y)[:, :17], rtol=0, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_blocked_window_op_gradcheck_float64(causal: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 7, 3, dtype=torch.float64, generator=gen, requires_grad=True) for _ in range(3))
    key_mask = torch.tensor([[True] * 5 + [False] * 2])
    positions = torch.tensor([[4, 0]])

    def op(q, k, v):
        return local_window_attention(q, k, v, 1, causal, key_mask, positions)

    assert torch.autograd.gradcheck(op, (q, k, v))


@pytest.mark.parametrize("half_window", [0, 1, 3, 20])
def test_blocked_window_op_matches_reference_float64(half_window: int) -> None:
    gen = torch.Generator().manual_seed(half_window)
    q, k, v = (torch.randn(2, 2, 19, 4, dtype=torch.float64, generator=gen) for _ in range(3))
    out = local_window_attention(q, k, v, half_window)
    ref = dense_attention(q, k, v, local_global_mask(19, 2 * half_window))
    assert relative_error(out, ref) <= 1e-12



def test_cpu_path_never_builds_an_n_by_n_tensor() -> None:
    """Forward + backward: nothing bigger than the chunked scores n * (3 * window/2 + g)."""
    n, window, num_global = 1024, 16, 2
    module = LocalGlobalAttention(8, 1, window_size=window, num_global_tokens=num_global)
    x = torch.randn(1, n, 8, requires_grad=True)
    mask = torch.arange(n)[None] < n - 3
    with LargestTensor() as probe:
        module(x, mask).sum().backward()
    assert probe.largest <= n * (3 * (window // 2) + num_global)
    assert probe.largest < n * n // 32


def window_and_global_keys_mask(n: int, half: int, positions: torch.Tensor, causal: bool) -> torch.Tensor:
    """The kernels' pattern: window keys plus global *keys* for every query (global rows are the module's job)."""
    is_global = torch.zeros(positions.shape[0], n, dtype=torch.bool).scatter(1, positions, True)
    allowed = local_global_mask(n, 2 * half) | is_global[:, None, :]
    if causal:
        allowed = allowed & torch.ones(n, n, dtype=torch.bool).tril()
    return allowed[:, None]


@pytest.mark.parametrize("causal", [False, True])
def test_blocked_window_op_with_globals_and_padding_matches_reference(causal: bool) -> None:
    gen = torch.Generator().manual_seed(2)
    b, h, n, d, half, g = 2, 2, 37, 8, 3, 3
    q, k, v = (torch.randn(b, h, n, d, generator=gen) for _ in range(3))
    mask, positions = random_padding_mask(b, n, gen), random_positions(b, n, g, gen)
    out = local_window_attention(q, k, v, half, causal, mask, positions)
    ref = dense_attention(q, k, v, with_key_padding(window_and_global_keys_mask(n, half, positions, causal), mask))
    real = mask[:, None, :, None]
    assert relative_error(out * real, ref * real) <= TOL


@needs_flex
@pytest.mark.filterwarnings("ignore:.*flex_attention called without torch.compile.*")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n, half, g", [(37, 3, 3), (300, 20, 6), (260, 2, 130)], ids=["one-block", "blocks", "2-slot-blocks"])
def test_flex_masks_match_reference_eagerly_on_cpu(causal: bool, n: int, half: int, g: int) -> None:
    """The FlexAttention block mask + score_mod + global columns (run unfused on CPU) express exactly the same
    pattern; globals inside a query's window must count once."""
    gen = torch.Generator().manual_seed(1)
    b, h, d = 2, 2, 8
    q, k, v = (torch.randn(b, h, n, d, generator=gen) for _ in range(3))
    mask, positions = random_padding_mask(b, n, gen), random_positions(b, n, g, gen)
    with torch.no_grad():
        out = flex_local_global_attention(q, k, v, half, causal, mask, positions, compiled=False)
        window_only = flex_local_global_attention(q, k, v, half, causal, None, None, compiled=False)
    ref = dense_attention(q, k, v, with_key_padding(window_and_global_keys_mask(n, half, positions, causal), mask))
    real = mask[:, None, :, None]
    assert relative_error(out * real, ref * real) <= TOL
    window_ref = dense_attention(q, k, v, local_global_mask(n, 2 * half, None, causal))
    assert relative_error(window_only, window_ref) <= TOL


@needs_flex
def test_block_mask_is_cached() -> None:
    cpu = torch.device("cpu")
    first = local_window_block_mask(40, 4, True, cpu)
    assert local_window_block_mask(40, 4, True, cpu) is first
    assert local_window_block_mask(40, 4, False, cpu) is not first
    with_globals = local_window_block_mask(40, 4, False, cpu, 3, "last")
    assert local_window_block_mask(40, 4, False, cpu, 3, "last") is with_globals
    assert local_window_block_mask(40, 4, False, cpu, 3, "first") is not with_globals


def summary_padding_mask(batch: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Like the video model's level 2: right-padded tokens, then 2 real summary tokens at the end."""
    return torch.cat([random_padding_mask(batch, n - 2, gen), torch.ones(batch, 2, dtype=torch.bool)], dim=1)


def fixed_positions(batch: int, n: int, g: int, global_tokens: str) -> torch.Tensor:
    """``(B, g)``: the first or the last ``g`` positions."""
    start = 0 if global_tokens == "first" else n - g
    return torch.arange(start, start + g).expand(batch, g)


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("global_tokens, causal", FIXED_GLOBALS, ids=FIXED_IDS)
def test_fixed_global_tokens_match_dense_reference_float64(global_tokens: str, causal: bool, padded: bool) -> None:
    """Output, input and parameter gradients of the (CPU, blocked) layer equal dense attention over the pattern."""
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    module = LocalGlobalAttention(16, 2, window_size=8, num_global_tokens=3, causal=causal, global_tokens=global_tokens)
    x = torch.randn(3, 37, 16, generator=gen, dtype=torch.float64)
    mask = summary_padding_mask(3, 37, gen) if padded else None
    check_against_reference(module.double(), x, mask, tol=1e-10)


@pytest.mark.parametrize("global_tokens, causal", FIXED_GLOBALS, ids=FIXED_IDS)
@pytest.mark.parametrize("n", [37, 2])
def test_fixed_global_tokens_are_the_first_or_last_positions_without_a_scorer(
    global_tokens: str, causal: bool, n: int
) -> None:
    module = LocalGlobalAttention(16, 2, window_size=8, num_global_tokens=3, causal=causal, global_tokens=global_tokens)
    assert module.global_scorer is None
    assert not any(name.startswith("global_scorer") for name, _ in module.named_parameters())
    assert f"global_tokens={global_tokens}" in repr(module)
    chosen = module.select_global_tokens(torch.randn(2, n, 16))
    assert torch.equal(chosen.positions, fixed_positions(2, n, min(3, n), global_tokens))
    assert chosen.value_scale is None


@pytest.mark.parametrize(
    "knobs, message",
    [
        ({"global_tokens": "middle"}, "global_tokens must be one of learned, first, last"),
        ({"global_tokens": "last", "causal": True}, "global_tokens=last cannot be causal.*use global_tokens=first"),
    ],
    ids=["unknown", "last-causal"],
)
def test_invalid_global_tokens_are_rejected_at_construction(knobs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalGlobalAttention(16, 2, window_size=8, num_global_tokens=3, **knobs)


@needs_flex
@pytest.mark.filterwarnings("ignore:.*flex_attention called without torch.compile.*")
@pytest.mark.parametrize("global_rows", [False, True], ids=["global-keys", "global-keys-and-rows"])
@pytest.mark.parametrize("global_tokens, causal", FIXED_GLOBALS, ids=FIXED_IDS)
@pytest.mark.parametrize("n, half, g", [(37, 4, 3), (300, 20, 6)], ids=["one-block", "blocks"])
def test_flex_static_global_mask_matches_reference_eagerly_on_cpu(
    global_tokens: str, causal: bool, n: int, half: int, g: int, global_rows: bool
) -> None:
    """One FlexAttention call with the static window | fixed-global-keys mask (run unfused on CPU, forward only:
    FlexAttention has no CPU backward) equals dense attention; globals inside a query's window count once. With
    ``global_rows`` the global queries' rows (every key; earlier ones if causal) are in the same call."""
    gen = torch.Generator().manual_seed(4)
    b, h, d = 2, 2, 8
    q, k, v = (torch.randn(b, h, n, d, generator=gen) for _ in range(3))
    mask = summary_padding_mask(b, n, gen)
    positions = fixed_positions(b, n, g, global_tokens)
    if global_rows:
        allowed = local_global_mask(n, 2 * half, positions, causal)
    else:
        allowed = window_and_global_keys_mask(n, half, positions, causal)
    real = mask[:, None, :, None]
    with torch.no_grad():
        out = flex_static_global_attention(
            q, k, v, half, g, global_tokens, causal, mask, compiled=False, global_rows=global_rows)
        unpadded = flex_static_global_attention(
            q, k, v, half, g, global_tokens, causal, None, compiled=False, global_rows=global_rows)
    assert relative_error(out * real, dense_attention(q, k, v, with_key_padding(allowed, mask)) * real) <= TOL
    assert relative_error(unpadded, dense_attention(q, k, v, allowed)) <= TOL


def eager_and_recorded(name: str, called: list[str]):
    """The layer module's FlexAttention function ``name``, run eagerly (CPU) and noting each call in ``called``."""
    kernel = getattr(local_global_module, name)

    def run(*args, **kwargs):
        called.append(name)
        return kernel(*args, **kwargs, compiled=False)

    return run


STATIC, MERGED = "flex_static_global_attention", "flex_local_global_attention"


@needs_flex
@pytest.mark.filterwarnings("ignore:.*flex_attention called without torch.compile.*")
@pytest.mark.parametrize("rows_in_mask", [True, False], ids=["rows-in-mask", "rows-beside"])
@pytest.mark.parametrize(
    "global_tokens, causal, kernel",
    [*((*case, STATIC) for case in FIXED_GLOBALS), ("learned", False, MERGED), ("learned", True, STATIC)],
    ids=[*FIXED_IDS, "learned", "learned-causal"],
)
def test_layer_routes_through_the_matching_flex_kernel(
    global_tokens: str, causal: bool, kernel: str, rows_in_mask: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where FlexAttention serves the call, fixed globals (and causal ``learned``, whose globals are the leading
    tokens) take the one-kernel static path — with the global rows in its mask up to
    ``global_rows_in_mask_max_len`` tokens, written by slice/cat beside it above — and non-causal ``learned`` the
    merged path; the layer's forward equals the dense reference every way."""
    called: list[str] = []
    for name in (STATIC, MERGED):
        monkeypatch.setattr(local_global_module, name, eager_and_recorded(name, called))
    monkeypatch.setattr(LocalGlobalAttention, "backend_for", lambda self, x: "flex")
    monkeypatch.setattr(LocalGlobalAttention, "global_rows_in_mask_max_len", 10_000 if rows_in_mask else 0)
    rows_written = []
    write_rows = LocalGlobalAttention._write_global_rows
    monkeypatch.setattr(LocalGlobalAttention, "_write_global_rows",
                        lambda self, *args: rows_written.append(1) or write_rows(self, *args))
    gen = torch.Generator().manual_seed(6)
    torch.manual_seed(6)
    module = LocalGlobalAttention(16, 2, window_size=8, num_global_tokens=3, causal=causal, global_tokens=global_tokens)
    x = torch.randn(2, 37, 16, generator=gen)
    mask = summary_padding_mask(2, 37, gen)
    with torch.no_grad():
        out, ref = module(x, mask), local_global_reference(module, x, mask)
    assert called == [kernel]
    assert bool(rows_written) == (kernel == MERGED or not rows_in_mask)
    assert relative_error(out, ref) <= TOL


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "n, num_global, window", [(300, 4, 64), (129, 0, 64), (1000, 8, 64), (2000, 16, 512), (1500, 130, 300)]
)
def test_cuda_flex_path_matches_dense_reference_bf16(causal: bool, n: int, num_global: int, window: int) -> None:
    """Sequence lengths off the 128-token block grid, window-only and with globals, forward and input gradient.

    Windows of 512 make whole 128x128 blocks full (the kernel skips the element mask there).
    """
    torch.manual_seed(n)
    module = LocalGlobalAttention(128, 4, window_size=window, num_global_tokens=num_global, causal=causal)
    check_cuda_flex_path(module, n)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("global_tokens, causal", FIXED_GLOBALS, ids=FIXED_IDS)
@pytest.mark.parametrize("n, num_global, window, rows_in_mask", [
    (300, 4, 64, True), (2000, 16, 512, True), (2000, 16, 512, False), (1500, 130, 300, False)])
def test_cuda_static_flex_path_matches_dense_reference_bf16(
    global_tokens: str, causal: bool, n: int, num_global: int, window: int, rows_in_mask: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fixed global tokens: the one-kernel static block mask, with globals spanning more than one 128-token block,
    their query rows in the mask (short sequences) or computed beside it (long ones)."""
    monkeypatch.setattr(LocalGlobalAttention, "global_rows_in_mask_max_len", 10**9 if rows_in_mask else 0)
    torch.manual_seed(n)
    module = LocalGlobalAttention(
        128, 4, window_size=window, num_global_tokens=num_global, causal=causal, global_tokens=global_tokens
    )
    check_cuda_flex_path(module, n)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("rows_in_mask", [True, False], ids=["rows-in-mask", "rows-beside"])
def test_cuda_long_sequence_tiles_match_dense_reference_bf16(
    rows_in_mask: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel tiles that long sequences get (ops.flex.STATIC_MASK_TILES), here applied from length 0 on a short
    sequence: the same results as the dense reference."""
    from hierarchicalvlm.attention.ops import flex

    monkeypatch.setattr(flex, "STATIC_MASK_TILES", ((0, flex.STATIC_MASK_TILES[-1][1]),))
    monkeypatch.setattr(LocalGlobalAttention, "global_rows_in_mask_max_len", 10**9 if rows_in_mask else 0)
    torch.manual_seed(1)
    module = LocalGlobalAttention(128, 4, window_size=512, num_global_tokens=16, global_tokens="first")
    check_cuda_flex_path(module, 2000)


def check_cuda_flex_path(module: LocalGlobalAttention, n: int) -> None:
    """In bf16 on CUDA, with one padded sample: output, input gradient (and finite parameter gradients) of the
    FlexAttention path match the float32 dense reference."""
    gen = torch.Generator().manual_seed(n)
    module = module.to("cuda", torch.bfloat16)
    x = torch.randn(2, n, 128, generator=gen).to("cuda", torch.bfloat16)
    mask = (torch.arange(n) < torch.tensor([[n], [2 * n // 3]])).cuda()
    assert module.backend_for(x) == "flex"
    weight = torch.randn_like(x)
    out, grads = output_and_grads(lambda m, x, mask: m(x, mask), module, x, mask, weight)
    ref_out, ref_grads = output_and_grads(
        lambda m, x, mask: local_global_reference(m, x, mask, torch.float32), module, x, mask, weight
    )
    assert relative_error(out, ref_out) <= 2e-2
    assert relative_error(grads[0], ref_grads[0]) <= 5e-2  # input gradient
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_layer_takes_the_blocked_path_inside_plain_pytorch_paths() -> None:
    from hierarchicalvlm.attention.ops.kernel_policy import plain_pytorch_paths

    module = LocalGlobalAttention(128, 2, window_size=64, num_global_tokens=4).cuda()
    x = torch.randn(1, 300, 128, device="cuda")
    assert module.backend_for(x) == "flex"
    with plain_pytorch_paths():
        assert module.backend_for(x) == "blocked"


def test_static_mask_tiles_are_chosen_by_sequence_length_and_reach_only_compiled_gpu_calls(monkeypatch) -> None:
    """The last ``STATIC_MASK_TILES`` entry whose length applies gives the mask's block size and the kernel options;
    an eager (reference) or CPU call gets no kernel options, and a mask of another block size is cached apart."""
    from hierarchicalvlm.attention.ops import flex

    small, large = flex.StaticMaskTiles(), flex.StaticMaskTiles((64, 64), (("bwd_num_warps", 4),))
    monkeypatch.setattr(flex, "STATIC_MASK_TILES", ((0, small), (100, large)))
    assert flex.static_mask_tiles(99) is small and flex.static_mask_tiles(100) is large
    q = torch.zeros(1, 1, 128, 16)
    assert flex._flex_call_options(q, compiled=True) == {}  # a CPU tensor
    assert flex._flex_call_options(q[:, :, :64], compiled=False) == {}
    mask = flex.local_window_block_mask(128, 8, False, torch.device("cpu"))
    assert mask.BLOCK_SIZE == (64, 64)
    assert flex.local_window_block_mask(64, 8, False, torch.device("cpu")).BLOCK_SIZE == (128, 128)
