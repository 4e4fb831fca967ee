#!/usr/bin/env python
"""The five efficient-attention mechanisms of HierarchicalVLM, one runnable example each (CPU, well under 30 s).

Every example runs the seed's quick-start call, prints the shapes, and then *shows* what the mechanism computes
with a small check that would fail loudly if it did not hold (the script exits non-zero):

1. Strided      - which tokens one query reads (its residue class), found by autograd.
2. Local+Global - which tokens one query reads (its window + the learned global tokens), vs the reference mask.
3. Cross-Memory - the fused output is the stated mix of the segment and what it read from memory.
4. Performer    - the seed's (1, 8192, 768) call, and how close FAVOR+ gets to exact softmax attention.
5. Mamba        - one-token-at-a-time decoding reproduces the parallel scan; a causal layer never looks ahead.

Run: ``python examples/attention_examples.py`` (from the repository root, with the package installed).
"""

from __future__ import annotations

import time

import torch

from hierarchicalvlm.attention import (
    CrossMemoryAttention,
    FullAttention,
    LocalGlobalAttention,
    MambaLayer,
    PerformerAttention,
    StridedAttention,
)
from hierarchicalvlm.attention.ops.reference import local_global_mask, strided_mask


def reads_from(module: torch.nn.Module, x: torch.Tensor, query: int) -> list[int]:
    """Positions whose input changes the output at ``query``: the nonzero rows of d out[query] / d x."""
    x = x.detach().clone().requires_grad_()
    module(x)[0, query].sum().backward()
    return (x.grad[0].abs().sum(dim=-1) > 0).nonzero().flatten().tolist()


def check(condition: bool, claim: str) -> None:
    """Print a claim the example just verified; stop the script if it does not hold."""
    if not condition:
        raise SystemExit(f"FAILED: {claim}")
    print(f"  ok: {claim}")


def example_strided() -> None:
    print("\n[1] StridedAttention: token i attends token j iff (i - j) % stride == 0  -- O(n^2 / stride)")
    attn = StridedAttention(stride=4, dim=768, num_heads=12)
    x = torch.randn(2, 1024, 768)
    with torch.no_grad():
        output = attn(x)
    print(f"  input {tuple(x.shape)} -> output {tuple(output.shape)}")

    small = StridedAttention(stride=4, dim=32, num_heads=4)
    seen = reads_from(small, torch.randn(1, 32, 32), query=5)
    print(f"  in a 32-token sequence, token 5 reads positions {seen}")
    expected = strided_mask(32, 4)[5].nonzero().flatten().tolist()
    check(seen == expected, "that is exactly its residue class 5 mod 4 (reference strided_mask)")


def example_local_global() -> None:
    print("\n[2] LocalGlobalAttention: |i - j| <= window // 2, plus learned global tokens that see and are seen by all")
    attn = LocalGlobalAttention(dim=768, num_heads=12, window_size=64, num_global_tokens=4)
    x = torch.randn(2, 1024, 768)
    with torch.no_grad():
        output = attn(x)
        chosen = attn.select_global_tokens(x).positions
    print(f"  input {tuple(x.shape)} -> output {tuple(output.shape)}; global tokens chosen per sample: "
          f"{chosen.tolist()}")

    small = LocalGlobalAttention(dim=32, num_heads=4, window_size=8, num_global_tokens=2).eval()
    x_small = torch.randn(1, 64, 32)
    positions = small.select_global_tokens(x_small).positions[0]
    query = 30 if 30 not in positions.tolist() else 31
    seen = reads_from(small, x_small, query=query)
    print(f"  window 8, 2 global tokens at {sorted(positions.tolist())}: token {query} reads positions {seen}")
    expected = local_global_mask(64, 8, positions)[query].nonzero().flatten().tolist()
    check(seen == expected, f"that is its window {query - 4}..{query + 4} plus the global tokens (reference mask)")


def example_cross_memory() -> None:
    print("\n[3] CrossMemoryAttention: local tokens read a memory bank; out = (1 - r) * local + r * cross  -- O(n * m)")
    cross_attn = CrossMemoryAttention(dim=768, num_heads=12)
    local = torch.randn(2, 64, 768)
    memory = torch.randn(2, 32, 768)
    with torch.no_grad():
        output = cross_attn(local, memory)
        print(f"  local {tuple(local.shape)} + memory {tuple(memory.shape)} -> output {tuple(output.shape)} "
              f"(fusion_ratio r = {cross_attn.fusion_ratio})")
        nothing_to_read = torch.zeros(2, 32, dtype=torch.bool)
        empty = cross_attn(local, memory, memory_mask=nothing_to_read)
    check(torch.allclose(empty, (1 - cross_attn.fusion_ratio) * local),
          "with an all-padding memory the output is exactly (1 - r) * local: nothing is read")


def example_performer() -> None:
    print("\n[4] PerformerAttention: softmax attention estimated by FAVOR+ random features  -- O(n * num_features)")
    performer = PerformerAttention(dim=768, num_heads=12)
    long_seq = torch.randn(1, 8192, 768)
    start = time.perf_counter()
    with torch.no_grad():
        output = performer(long_seq)
    print(f"  input {tuple(long_seq.shape)} -> output {tuple(output.shape)} in {time.perf_counter() - start:.2f} s "
          f"(no 8192 x 8192 matrix is formed)")

    x = torch.randn(1, 1024, 128)  # unit-variance tokens, as a LayerNorm hands them over
    errors = {}
    for num_features in (16, 64, 256, 1024):
        approx = PerformerAttention(dim=128, num_heads=2, num_features=num_features).eval()
        exact = FullAttention(dim=128, num_heads=2).eval()
        exact.load_state_dict({k: v for k, v in approx.state_dict().items() if k != "projection"})
        with torch.no_grad():
            reference = exact(x)
            errors[num_features] = ((approx(x) - reference).norm() / reference.norm()).item()
    print("  relative error vs exact softmax attention with the same weights: "
          + ", ".join(f"m={m}: {e:.3f}" for m, e in errors.items()))
    check(errors[1024] < errors[64] < errors[16], "more random features -> closer to softmax attention")
    print("  (an estimate, not exact attention: the error falls slowly, ~1/sqrt(m), and grows with |q|, |k|)")


def example_mamba() -> None:
    print("\n[5] MambaLayer: selective state-space scan h_t = exp(dt*A) h_(t-1) + dt * B_t x_t, y_t = C_t h_t  -- O(n)")
    layer = MambaLayer(dim=768, num_heads=12)  # causal by default; conf/attention/mamba.yaml uses causal: false
    x = torch.randn(2, 1024, 768)
    with torch.no_grad():
        output = layer(x)
    print(f"  input {tuple(x.shape)} -> output {tuple(output.shape)}; state per head: "
          f"{layer.inner_dim // layer.num_heads} x {layer.d_state} (constant in sequence length)")

    small = MambaLayer(dim=64, num_heads=4).eval()
    x_small = torch.randn(1, 24, 64)
    with torch.no_grad():
        parallel = small(x_small)
        state, steps = None, []
        for t in range(x_small.shape[1]):
            out_t, state = small.step(x_small[:, t], state)
            steps.append(out_t)
        gap = (torch.stack(steps, dim=1) - parallel).abs().max().item()
        changed_last = x_small.clone()
        changed_last[:, -1] += 1.0
        past_untouched = torch.equal(small(changed_last)[:, :-1], parallel[:, :-1])
    check(gap < 1e-4, f"decoding one token at a time with step() equals the parallel chunked scan (max gap {gap:.1e})")
    check(past_untouched, "changing the last token leaves every earlier output unchanged (causal)")


def main() -> None:
    torch.manual_seed(0)
    start = time.perf_counter()
    for example in (example_strided, example_local_global, example_cross_memory, example_performer, example_mamba):
        example()
    print(f"\nall five examples passed in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
