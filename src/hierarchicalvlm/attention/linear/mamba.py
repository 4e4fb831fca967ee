"""Mamba-2-style selective state-space layer: a linear-time, input-dependent recurrence as a sequence mixer."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from hierarchicalvlm.utils.checks import check_positive

from ..base import SequenceMixer
from ..ops.kernel_policy import compiled_on_cuda
from ..ops.ssd import mamba_ssm_module, selective_scan_reference, ssd_scan, use_fused_scan


class MambaState(NamedTuple):
    """What one-token inference carries between steps.

    conv: the last ``d_conv - 1`` inputs of the depthwise convolution, ``(B, d_conv - 1, channels)``.
    ssm: the recurrent state, ``(B, heads, head_dim, d_state)``, float32.
    """

    conv: torch.Tensor
    ssm: torch.Tensor


def causal_depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``(B, N, channels)`` -> same shape: output t mixes inputs t−K+1..t of its own channel (zeros before 0).

    ``weight (channels, 1, K)`` and ``bias`` are a depthwise ``nn.Conv1d``'s, with its cross-correlation order
    (``weight[..., K-1]`` multiplies input t).  Written as K shifted multiply-adds rather than ``F.conv1d``: with a
    kernel of 4 that is a few element-wise passes, which ``torch.compile`` fuses into one kernel with the SiLU and
    splits around it (and likewise in the backward), where a convolution would stay a kernel of its own.
    """
    size, n = weight.shape[-1], x.shape[1]
    taps = weight[:, 0].to(x.dtype)  # (channels, K)
    padded = F.pad(x, (0, 0, size - 1, 0))
    out = padded[:, :n] * taps[:, 0]
    for k in range(1, size):
        out = out + padded[:, k:k + n] * taps[:, k]
    return out if bias is None else out + bias.to(x.dtype)


def _reverse_time(t: torch.Tensor, flags: Union[bool, torch.Tensor]) -> torch.Tensor:
    """``t (B, N, ...)`` with the entries ``flags`` marks in reversed time order: ``False`` none, ``True`` all, or a bool
    tensor over ``t``'s trailing dimensions (broadcast).  A plain flip or a select between ``t`` and its flip: under
    ``torch.compile`` both become index arithmetic inside the kernel that reads ``t``."""
    if isinstance(flags, bool):
        return t.flip(1) if flags else t
    return torch.where(flags, t.flip(1), t)


def _scan_inputs(
    xBC: torch.Tensor, dt_raw: torch.Tensor, real: Optional[torch.Tensor], conv_weight: torch.Tensor,
    conv_bias: Optional[torch.Tensor], dt_bias: torch.Tensor, A_log: torch.Tensor, num_heads: int, d_state: int,
    groups: int = 1, reversed_channels: Union[bool, torch.Tensor] = False, reversed_heads: Union[bool, torch.Tensor] = False,
) -> tuple[torch.Tensor, ...]:
    """Conv + SiLU on (x, B, C), then the scan inputs ``x (.., H, P)``, ``Δ (.., H)``, ``A (H,)``, ``B, C (.., S)``
    (``(.., G, S)`` with ``groups`` > 1).

    ``real (B, N)``: True at real tokens; padded positions get zeroed conv inputs (they cannot leak into real
    neighbours) and ``Δ = 0``, ``x = 0``, so the scan passes the state through them unchanged. Δ and A are float32
    or wider.  ``reversed_channels`` / ``reversed_heads`` (see :func:`_reverse_time`): the channels of ``xBC`` and
    heads of ``dt_raw`` that scan the sequence from its end, given in reversed time order (so the causal conv and
    the scan run backwards in time for them).
    A plain function of tensors, so that a CUDA layer can run it under ``torch.compile`` (flips included).
    """
    if real is not None:
        xBC = xBC.masked_fill(~real.unsqueeze(-1), 0.0)
        real = _reverse_time(real.unsqueeze(-1), reversed_heads)  # (B, N, 1) or (B, N, H), in each head's order
    xBC, dt_raw = _reverse_time(xBC, reversed_channels), _reverse_time(dt_raw, reversed_heads)
    conv_out = F.silu(causal_depthwise_conv(xBC, conv_weight, conv_bias))
    xs, B, C = torch.split(conv_out, [conv_out.shape[-1] - 2 * groups * d_state, groups * d_state, groups * d_state], dim=-1)
    xs = xs.unflatten(-1, (num_heads, -1))
    if groups > 1:
        B, C = B.unflatten(-1, (groups, d_state)), C.unflatten(-1, (groups, d_state))
    wide = torch.promote_types(dt_raw.dtype, torch.float32)
    dt = F.softplus(dt_raw.to(wide) + dt_bias.to(wide))
    A = -torch.exp(A_log.to(wide))
    if real is not None:
        dt = dt.masked_fill(~real, 0.0)
        xs = xs.masked_fill(~real.unsqueeze(-1), 0.0)
    return xs, dt, A, B, C


def _gated_rms_norm(
    y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, eps: Optional[float], y_reversed: Optional[torch.Tensor] = None,
    reversed_heads: Union[bool, torch.Tensor] = False,
) -> torch.Tensor:
    """``RMSNorm(y · SiLU(z))`` over the last dimension (``y (.., H, P)`` flattened to z's width, in z's dtype).

    ``reversed_heads``: the heads of ``y`` given in reversed time order (put back first); ``y_reversed``: the
    backward direction's output in its own (reversed) time order, added to ``y``."""
    if not isinstance(reversed_heads, bool):
        reversed_heads = reversed_heads.unsqueeze(-1)  # over (H, P)
    y = _reverse_time(y, reversed_heads)
    if y_reversed is not None:
        y = y + y_reversed.flip(1)
    return F.rms_norm(y.flatten(-2).to(z.dtype) * F.silu(z), (z.shape[-1],), weight, eps)


def _fused(function: Callable, x: torch.Tensor, kernel: str) -> Callable:
    """``function`` compiled where the layer runs its fused CUDA path (:func:`.kernel_policy.compiled_on_cuda`).

    The element-wise work around the scan (conv, SiLU, softplus, masking, flips; gate and norm) is most of the
    layer's time when run op by op (eager PyTorch took ~38 of 43 ms at 131K tokens on an H200, mamba-ssm's scan
    4.5); compiled, each side becomes a few fused kernels."""
    return compiled_on_cuda(function, x) if x.is_cuda and use_fused_scan(x, kernel) else function


SCAN_DIRECTIONS = ("forward", "backward", "both")
BIDIRECTIONAL_SCANS = ("two_scans", "split_heads")


def _conv_channels(inner_dim: int, d_state: int, direction: str) -> int:
    """Width of a scan's conv input ``(x, B, C)``: one ``B``, ``C`` pair per direction the scan runs."""
    return inner_dim + 2 * (2 if direction == "both" else 1) * d_state


class ScanDirection(nn.Module):
    """One selective scan of the layer: causal depthwise conv + SiLU on (x, B, C), then the scan.

    ``direction``: ``forward`` (left to right), ``backward`` (from the sequence's end; its output comes back in
    that reversed order), or ``both``: the first half of the heads scan forwards and the second half backwards, in
    one scan call, each half with its own ``B``, ``C`` (two groups: the conv input then holds ``x, B_fwd, B_bwd,
    C_fwd, C_bwd``); the output is in time order for every head.
    Owns the per-scan parameters: the convolution, ``A_log`` (decay rates ``A = −exp(A_log)`` per head),
    ``dt_bias`` (``Δ = softplus(dt + dt_bias)``) and the skip weight ``D`` per head.
    """

    def __init__(
        self, inner_dim: int, num_heads: int, d_state: int, d_conv: int, chunk_size: int, dt_min: float, dt_max: float,
        a_min: float, a_max: float, direction: str = "forward",
    ) -> None:
        super().__init__()
        if direction not in SCAN_DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(SCAN_DIRECTIONS)}, got {direction!r}")
        self.inner_dim, self.num_heads, self.d_state, self.chunk_size = inner_dim, num_heads, d_state, chunk_size
        self.direction = direction
        self.groups = 2 if direction == "both" else 1
        self.head_dim = inner_dim // num_heads
        channels = _conv_channels(inner_dim, d_state, direction)
        self.conv = nn.Conv1d(channels, channels, kernel_size=d_conv, groups=channels)  # weights; see causal_depthwise_conv
        # Mamba-2 initialisation: A uniform in [a_min, a_max] (Mamba-2: [1, 16]), Δ log-uniform in [dt_min, dt_max]
        # (dt_bias = softplus⁻¹(Δ)).
        self.A_log = nn.Parameter(torch.empty(num_heads).uniform_(a_min, a_max).log())
        dt = torch.exp(torch.rand(num_heads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp_min(1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.D = nn.Parameter(torch.ones(num_heads))
        if direction == "both":  # which heads and conv channels run backwards in time: the second half of each part
            backward_heads = torch.arange(num_heads) >= num_heads // 2
            second_group = (torch.arange(2 * d_state) >= d_state).repeat(2)  # of (B_fwd, B_bwd, C_fwd, C_bwd)
            self.register_buffer("reversed_heads", backward_heads, persistent=False)
            self.register_buffer(
                "reversed_channels", torch.cat([backward_heads.repeat_interleave(self.head_dim), second_group]), persistent=False)

    def _reversed(self) -> tuple[Union[bool, torch.Tensor], Union[bool, torch.Tensor]]:
        """(channels, heads) that run backwards in time, as :func:`_reverse_time` takes them."""
        if self.direction == "both":
            return self.reversed_channels, self.reversed_heads
        return (self.direction == "backward",) * 2

    def _scan_inputs(
        self, xBC: torch.Tensor, dt_raw: torch.Tensor, real: Optional[torch.Tensor], kernel: str = "torch"
    ) -> tuple[torch.Tensor, ...]:
        """This scan's inputs (:func:`_scan_inputs`), compiled where the layer runs its fused CUDA path."""
        prepare = _fused(_scan_inputs, xBC, kernel)
        return prepare(xBC, dt_raw, real, self.conv.weight, self.conv.bias, self.dt_bias, self.A_log, self.num_heads,
                       self.d_state, self.groups, *self._reversed())

    def forward(
        self, xBC: torch.Tensor, dt_raw: torch.Tensor, mask: Optional[torch.Tensor], kernel: str = "auto"
    ) -> torch.Tensor:
        """``xBC (B, N, channels)``, ``dt_raw (B, N, H)`` -> ``y (B, N, H, P)``, scanned as ``kernel`` says.

        Padded positions (``mask`` False) leave the state unchanged and never reach a real token. The heads that
        scan backwards return ``y`` in their scan order (last token first); :meth:`reversed_output_heads` names them."""
        xs, dt, A, B, C = self._scan_inputs(xBC, dt_raw, mask, kernel)
        return ssd_scan(xs, dt, A, B, C, self.chunk_size, D=self.D, kernel=kernel)

    def reversed_output_heads(self) -> Union[bool, torch.Tensor]:
        """The heads of :meth:`forward`'s output that are in reversed time order (as :func:`_reverse_time` takes them)."""
        return self._reversed()[1]

    def step(self, xBC: torch.Tensor, dt_raw: torch.Tensor, state: MambaState) -> tuple[torch.Tensor, MambaState]:
        """One token: ``xBC (B, channels)``, ``dt_raw (B, H)`` -> ``y (B, H, P)`` and the next state (``forward`` only)."""
        window = torch.cat([state.conv, xBC.unsqueeze(1)], dim=1)  # (B, d_conv, channels)
        dt_window = dt_raw.unsqueeze(1).expand(-1, window.shape[1], -1)  # only the last position is read
        xs, dt, A, B, C = self._scan_inputs(window, dt_window, None)
        y, ssm = selective_scan_reference(
            xs[:, -1:], dt[:, -1:], A, B[:, -1:], C[:, -1:], D=self.D, initial_state=state.ssm, return_final_state=True)
        return y.squeeze(1), MambaState(conv=window[:, 1:], ssm=ssm)


class MambaLayer(SequenceMixer):
    """Selective state-space mixer in the Mamba-2 form (scalar decay per head), linear in sequence length.

    ``in_proj`` maps each token to a gate ``z``, the scan input ``x``, the shared ``B``, ``C`` (``ngroups=1``;
    one pair per direction with ``split_heads``) and a step ``dt`` per head; a short causal depthwise conv + SiLU acts on (x, B, C); per head the state
    follows ``h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t x_tᵀ``, ``y_t = C_t·h_t + D x_t`` with ``Δ_t = softplus(dt_t +
    dt_bias)`` (input-dependent) and ``A = −exp(A_log)``; then ``RMSNorm(y · SiLU(z))`` and ``out_proj``.
    Training runs the parallel chunked (SSD) scan; :meth:`step` decodes one token at a time.

    Args:
        dim, num_heads, dropout: as for every mixer; the scan's inner width ``expand · dim`` is split into
            ``num_heads`` heads, so ``num_heads`` must divide it.  Dropout acts before ``out_proj``.
        causal: True = one left-to-right scan.  False = bidirectional, every token sees the whole clip, in one
            of two ways (``bidirectional_scan``).
        bidirectional_scan: ``two_scans`` (Vision-Mamba style): a second scan over the reversed sequence with
            every head, its own conv/A/Δ-bias/D (``in_proj``, gate, norm and ``out_proj`` are shared), summed with
            the forward one: twice the scan work of a causal layer.  ``split_heads``: one scan in which the first
            half of the heads run forwards and the second half backwards, each half with its own ``B``, ``C``;
            ``out_proj`` mixes the halves.  The cost of a causal layer (one scan), half the state per direction.
        d_state: state size per head.  expand: inner width over ``dim``.  d_conv: conv kernel size.
        chunk_size: chunk length of the parallel scan (speed/memory only, not the result).
        dt_min, dt_max: range of the initial step sizes Δ.
        a_min, a_max: range of the initial decay rates ``A`` (mamba-ssm's ``A_init_range``; Mamba-2 uses
            [1, 16]).  A head keeps a token for about ``1 / (Δ·A)`` steps, so smaller rates start with a longer
            memory: docs/EMBEDDED_TASK.md shows [1, 16] keeping mamba at chance on needle retrieval.
        kernel: ``auto`` (mamba-ssm's Triton scan on CUDA when installed), ``torch`` (the chunked PyTorch scan) or
            ``fused`` (:mod:`..ops.kernel_policy`; ``HVLM_SSD_KERNEL`` overrides it).

    Masking: padded positions get ``Δ = 0`` and ``x = 0`` (and zeroed conv inputs), so they leave the state
    unchanged and never reach a real token — with left or right padding, in both directions.
    """

    supports_causal = True

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        d_state: int = 64,
        expand: float = 2,
        d_conv: int = 4,
        chunk_size: int = 256,
        dropout: float = 0.0,
        causal: bool = True,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        a_min: float = 1.0,
        a_max: float = 16.0,
        kernel: str = "auto",
        bidirectional_scan: str = "two_scans",
    ) -> None:
        super().__init__(dim, num_heads, dropout, causal, kernel)
        if bidirectional_scan not in BIDIRECTIONAL_SCANS:
            raise ValueError(
                f"bidirectional_scan must be one of {', '.join(BIDIRECTIONAL_SCANS)}, got {bidirectional_scan!r}; "
                "set attention.bidirectional_scan")
        split = not causal and bidirectional_scan == "split_heads"
        if split and num_heads % 2:
            raise ValueError(
                f"bidirectional_scan=split_heads gives half the heads to each direction, so num_heads must be even, "
                f"got {num_heads}; change num_heads or set attention.bidirectional_scan=two_scans")
        check_positive(d_state=d_state, expand=expand, d_conv=d_conv, chunk_size=chunk_size, dt_min=dt_min, dt_max=dt_max,
                       a_min=a_min, a_max=a_max)
        for (low_name, low), (high_name, high) in ((("dt_min", dt_min), ("dt_max", dt_max)), (("a_min", a_min), ("a_max", a_max))):
            if low > high:
                raise ValueError(f"{low_name} ({low}) must not exceed {high_name} ({high})")
        inner_dim = expand * dim
        if inner_dim != int(inner_dim) or int(inner_dim) % num_heads != 0:
            raise ValueError(
                f"expand * dim = {inner_dim} must be an integer divisible by num_heads ({num_heads}); "
                "change expand or num_heads"
            )
        self.inner_dim = int(inner_dim)
        self.d_state, self.d_conv = int(d_state), int(d_conv)
        self.bidirectional_scan = None if causal else bidirectional_scan
        first_direction = "both" if split else "forward"  # split_heads: both directions' heads in the first scan
        self.scan_channels = _conv_channels(self.inner_dim, self.d_state, first_direction)
        self.in_proj = nn.Linear(dim, self.inner_dim + self.scan_channels + num_heads, bias=False)
        direction_args = (self.inner_dim, num_heads, self.d_state, self.d_conv, int(chunk_size), dt_min, dt_max, a_min, a_max)
        mamba_ssm_module()  # look the optional GPU scan up now, outside any graph that compiles this layer
        self.forward_scan = ScanDirection(*direction_args, direction=first_direction)
        two_scans = not causal and not split
        self.backward_scan = ScanDirection(*direction_args, direction="backward") if two_scans else None
        self.norm = nn.RMSNorm(self.inner_dim)
        self.drop = nn.Dropout(dropout)
        self.out_proj = nn.Linear(self.inner_dim, dim, bias=False)

    def _split_projection(self, projected: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``in_proj`` output -> gate ``z``, conv input ``(x, B, C)`` and raw step ``dt``."""
        return torch.split(projected, [self.inner_dim, self.scan_channels, self.num_heads], dim=-1)

    def _output(self, y: torch.Tensor, z: torch.Tensor, y_reversed: Optional[torch.Tensor] = None) -> torch.Tensor:
        normed = _fused(_gated_rms_norm, z, self.kernel)(
            y, z, self.norm.weight, self.norm.eps, y_reversed, self.forward_scan.reversed_output_heads())
        return self.out_proj(self.drop(normed))

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        z, xBC, dt_raw = self._split_projection(self.in_proj(x))
        y = self.forward_scan(xBC, dt_raw, mask, self.kernel)
        y_reversed = None if self.backward_scan is None else self.backward_scan(xBC, dt_raw, mask, self.kernel)
        return self._output(y, z, y_reversed)

    def zero_state(self, batch_size: int, device: Optional[torch.device] = None, dtype: Optional[torch.dtype] = None) -> MambaState:
        """The state before the first token (for :meth:`step`)."""
        weight = self.in_proj.weight
        conv = torch.zeros(batch_size, self.d_conv - 1, self.scan_channels, device=device or weight.device, dtype=dtype or weight.dtype)
        ssm = torch.zeros(batch_size, self.num_heads, self.inner_dim // self.num_heads, self.d_state,
                          device=device or weight.device, dtype=torch.float32)
        return MambaState(conv=conv, ssm=ssm)

    def step(self, x_t: torch.Tensor, state: Optional[MambaState] = None) -> tuple[torch.Tensor, MambaState]:
        """Process one token ``x_t (B, dim)`` given the state after the previous tokens.

        Returns the output ``(B, dim)`` — the same as position t of the full-sequence forward — and the new
        state.  Only a causal layer can run step by step.
        """
        if not self.causal:
            raise ValueError("step() needs a causal layer; a bidirectional (causal=False) layer must see the whole sequence")
        if x_t.dim() != 2 or x_t.shape[-1] != self.dim:
            raise ValueError(f"x_t must have shape (batch, dim={self.dim}), got {tuple(x_t.shape)}")
        if state is None:
            state = self.zero_state(x_t.shape[0], x_t.device, x_t.dtype)
        z, xBC, dt_raw = self._split_projection(self.in_proj(x_t))
        y, state = self.forward_scan.step(xBC, dt_raw, state)
        return self._output(y, z), state

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, d_state={self.d_state}, inner_dim={self.inner_dim}, "
            f"d_conv={self.d_conv}, chunk_size={self.forward_scan.chunk_size}"
            + ("" if self.bidirectional_scan is None else f", bidirectional_scan={self.bidirectional_scan}")
        )
