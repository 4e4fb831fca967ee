"""FAVOR+ (Choromanski et al., 2021, "Rethinking Attention with Performers") as plain functions.

Softmax attention weighs key ``k`` for query ``q`` by the kernel ``exp(q·k / √d)``.  FAVOR+ estimates
that kernel without bias by a dot product of positive random features,

    φ(x) = exp(ωᵀx̂ − ‖x̂‖²/2) / √m,   x̂ = x · d^(−1/4),   ω_1..ω_m ~ N(0, I_d),

so ``E[φ(q)·φ(k)] = exp(q·k/√d)``.  Attention then becomes ``φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1)``, which costs
O(n·m·d) and never forms an n×n matrix.  Drawing the ω's as blocks of orthogonal rows (with the
chi-distributed norms of Gaussian vectors) keeps each ω Gaussian but lowers the estimator's variance.

Numerics: features are computed in float32 (or float64 if given) whatever the input dtype.  Each query's
features are divided by their own maximum and all keys of a sequence by one shared maximum; both are
constant factors of the numerator and denominator alike, so they cancel exactly (in causal mode too: the
key factor is the same for every prefix) while keeping every feature in (0, 1].  The one caveat: in causal
mode a much larger later key raises the shared maximum and can push earlier keys' features into float32
underflow — an extreme-magnitude regime, where the affected queries return ~0 rather than NaN.

Layout: ``(batch, heads, seq_len, head_dim)`` for q/k/v and ``(batch, heads, seq_len, num_features)`` for
features; masks are ``(batch, seq_len)`` bool with True = real token.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F


def orthogonal_gaussian_projection(
    num_features: int,
    head_dim: int,
    *,
    generator: Optional[torch.Generator] = None,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Draw the ``(num_features, head_dim)`` FAVOR+ projection ω, in float32.

    Rows come in blocks of ``head_dim`` mutually orthogonal unit vectors (a Haar-random orthogonal
    matrix per block), each rescaled by the norm of an independent ``N(0, I)`` vector, so every row is
    marginally ``N(0, I)`` (unbiased estimator) while rows within a block are exactly orthogonal.
    """
    if num_features <= 0:
        raise ValueError(f"num_features must be a positive number, got {num_features!r}")
    if head_dim <= 0:
        raise ValueError(f"head_dim must be a positive number, got {head_dim!r}")
    num_blocks = math.ceil(num_features / head_dim)
    gaussian = torch.randn(num_blocks, head_dim, head_dim, generator=generator, dtype=torch.float32)
    q, r = torch.linalg.qr(gaussian)
    # Fix QR's sign ambiguity so each block is Haar-distributed (hence every row uniform on the sphere).
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    directions = q.transpose(-2, -1).reshape(num_blocks * head_dim, head_dim)[:num_features]
    norms = torch.randn(num_features, head_dim, generator=generator, dtype=torch.float32).norm(dim=-1, keepdim=True)
    return (directions * norms).to(device)


def favor_features(
    x: torch.Tensor,
    projection: torch.Tensor,
    *,
    is_query: bool,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Positive random features φ(x) of queries or keys, ``(B, H, N, d) -> (B, H, N, m)``.

    Args:
        x: queries or keys, any float dtype; computed in float32 (float64 stays float64).
        projection: ``(m, d)`` matrix ω from :func:`orthogonal_gaussian_projection`.
        is_query: queries are stabilised by a per-query maximum (their features are thus defined up to a
            per-query factor), keys by one maximum over the real keys of each (batch, head); either factor
            cancels in the attention normalisation.
        mask: optional ``(B, N)`` bool, True = real token.  Padded keys get φ = 0 so they contribute
            nothing; padded queries are left as they are (their outputs are discarded by the caller).
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (batch, heads, seq_len, head_dim), got {tuple(x.shape)}")
    if projection.dim() != 2 or projection.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"projection must have shape (num_features, {x.shape[-1]}) to match x, got {tuple(projection.shape)}"
        )
    if mask is not None and mask.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"mask must have shape (batch, seq_len) = {(x.shape[0], x.shape[2])}, got {tuple(mask.shape)}")
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    x = x.to(compute_dtype)
    x_hat = x * x.shape[-1] ** -0.25
    logits = x_hat @ projection.to(compute_dtype).transpose(-2, -1)
    padded = None if mask is None else ~mask[:, None, :, None]
    if is_query:
        # −‖x̂‖²/2 is constant per query, like the maximum: both drop out together.
        stabiliser = logits.amax(dim=-1, keepdim=True)
    else:
        logits = logits - 0.5 * x_hat.pow(2).sum(-1, keepdim=True)
        real_logits = logits if padded is None else logits.masked_fill(padded, float("-inf"))
        stabiliser = real_logits.amax(dim=(-2, -1), keepdim=True)
        # A sequence without any real key has no finite maximum; any constant will do there.
        stabiliser = torch.where(torch.isfinite(stabiliser), stabiliser, torch.zeros_like(stabiliser))
    features = torch.exp(logits - stabiliser.detach()) * projection.shape[0] ** -0.5
    if padded is not None and not is_query:
        features = features.masked_fill(padded, 0.0)
    return features


def _normalise(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    # The denominator is a sum of positive terms; it vanishes only when every feature product underflowed
    # (or no key is visible), where the numerator vanishes as well.  The floor √tiny (1e-19 in float32)
    # returns ~0 there and keeps 1/denominator, hence the gradients, finite instead of inf·0 = NaN.
    return numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny ** 0.5)


def linear_attention(phi_q: torch.Tensor, phi_k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Non-causal linear attention ``φQ(φKᵀV) / φQ(φKᵀ1)``: every query sees every key, O(n·m·d).

    Shapes: ``phi_q (B, H, Nq, m)``, ``phi_k (B, H, Nk, m)``, ``v (B, H, Nk, d)`` -> ``(B, H, Nq, d)``.
    Padded keys must have zero features (see :func:`favor_features`).
    """
    key_values = phi_k.transpose(-2, -1) @ v  # (B, H, m, d)
    key_sum = phi_k.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (B, H, m, 1)
    return _normalise(phi_q @ key_values, phi_q @ key_sum)


def favor_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    projection: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    *,
    causal: bool = False,
    chunk_size: int = 64,
) -> torch.Tensor:
    """FAVOR+ attention from q, k, v ``(B, H, N, d)``: features of both, then the linear-attention core.

    Runs in float32 (float64 stays float64) with autocast off, whatever the inputs' dtype; ``mask`` ``(B, N)`` marks
    the real keys; ``causal`` takes the chunked causal core with ``chunk_size``.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        phi_q = favor_features(q, projection, is_query=True)
        phi_k = favor_features(k, projection, is_query=False, mask=mask)
        values = v.to(phi_k.dtype)
        if causal:
            return causal_linear_attention(phi_q, phi_k, values, chunk_size)
        return linear_attention(phi_q, phi_k, values)


def causal_linear_attention(phi_q: torch.Tensor, phi_k: torch.Tensor, v: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Causal linear attention: query ``i`` sees keys ``j <= i`` only, in O(n·(c + m)·d) time.

    The sequence is cut into chunks of ``chunk_size``.  Inside a chunk the (c×c) lower-triangular product is
    formed directly; the keys of all earlier chunks enter through their running state ``Σ φ(k) vᵀ`` (and
    ``Σ φ(k)``), obtained for every chunk at once by an exclusive cumulative sum of per-chunk summaries.
    Shapes as in :func:`linear_attention` with ``Nq == Nk``.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive number, got {chunk_size!r}")
    if phi_q.shape != phi_k.shape or phi_k.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            f"phi_q {tuple(phi_q.shape)}, phi_k {tuple(phi_k.shape)} and v {tuple(v.shape)} must agree "
            "on (batch, heads, seq_len), and phi_q/phi_k on num_features"
        )
    *lead, n, m = phi_q.shape
    d = v.shape[-1]
    pad = (-n) % chunk_size
    if pad:  # zero features: padded keys add nothing, padded queries are cut off below
        phi_q, phi_k, v = (F.pad(t, (0, 0, 0, pad)) for t in (phi_q, phi_k, v))
    num_chunks = (n + pad) // chunk_size
    q = phi_q.reshape(*lead, num_chunks, chunk_size, m)
    k = phi_k.reshape(*lead, num_chunks, chunk_size, m)
    vc = v.reshape(*lead, num_chunks, chunk_size, d)

    within = torch.tril(q @ k.transpose(-2, -1))  # (..., C, c, c), key j <= query i inside the chunk
    numerator = within @ vc
    denominator = within.sum(dim=-1, keepdim=True)

    chunk_key_values = k.transpose(-2, -1) @ vc  # (..., C, m, d)
    chunk_key_sum = k.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (..., C, m, 1)
    # Exclusive prefix over chunks: chunk t sees the summaries of chunks < t.
    prior_key_values = F.pad(chunk_key_values[..., :-1, :, :].cumsum(dim=-3), (0, 0, 0, 0, 1, 0))
    prior_key_sum = F.pad(chunk_key_sum[..., :-1, :, :].cumsum(dim=-3), (0, 0, 0, 0, 1, 0))
    numerator = numerator + q @ prior_key_values
    denominator = denominator + q @ prior_key_sum
    out = _normalise(numerator, denominator)
    return out.reshape(*lead, num_chunks * chunk_size, d)[..., :n, :]
