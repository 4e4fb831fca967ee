"""Which kernel a mechanism runs: the one place the choice is made.

Every mechanism has the knob ``kernel`` (``conf/attention/<name>.yaml``, ``attention.kernel=...``):

* ``auto`` (default): the fused kernel wherever it can serve the call and is the faster path, else the plain
  PyTorch path;
* ``torch``: always the plain PyTorch path (for SDPA-based mechanisms: SDPA's math kernel);
* ``fused``: always the fused kernel; a call it cannot serve (CPU tensors, a causal Performer, attention dropout
  under FlexAttention, mamba-ssm not installed, ...) raises instead of falling back silently.

The mechanisms built on ``scaled_dot_product_attention`` (``full``, ``strided``) also take ``flash``, ``cudnn`` or
``efficient`` to pin that one SDPA kernel; on CPU, SDPA always picks its own kernel unless ``kernel`` is ``torch``.

The fused kernels by family: ``sdpa`` (SDPA's flash / memory-efficient / cuDNN kernels), ``flex`` (local_global's
FlexAttention), ``favor`` (Performer's Triton kernel, :mod:`.favor_triton`) and ``ssd`` (mamba-ssm's Triton scan).

Overrides, strongest first:

1. :func:`plain_pytorch_paths`: within it the ``flex``, ``favor`` and ``ssd`` kernels are off whatever the knob
   says. The FLOP count of a training job (``callbacks/flops.py``) runs inside it: PyTorch's ``FlopCounterMode``
   counts ordinary aten operations, while a Triton custom op counts zero FLOPs and compiling FlexAttention under
   the counter fails (and leaves dynamo's cache poisoned for the training graph that follows). SDPA keeps its
   kernel there: the counter has formulas for SDPA's fused kernels.
2. The environment variables ``HVLM_FAVOR_KERNEL`` (Performer) and ``HVLM_SSD_KERNEL`` (Mamba), set to ``torch``,
   ``fused`` or ``auto``: when set to anything but ``auto`` they replace that mechanism's knob for the process
   (``HVLM_FAVOR_KERNEL=torch`` keeps every Performer layer on the PyTorch path without touching a config).
3. The mechanism's ``kernel`` knob.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import torch

KERNELS = ("auto", "torch", "fused")
# SDPA's fused kernels a mechanism may pin, -> names of torch.nn.attention.SDPBackend members
SDPA_PINNED = {"flash": "FLASH_ATTENTION", "cudnn": "CUDNN_ATTENTION", "efficient": "EFFICIENT_ATTENTION"}
SDPA_KERNELS = KERNELS + tuple(SDPA_PINNED)
ENV_OVERRIDES = {"favor": "HVLM_FAVOR_KERNEL", "ssd": "HVLM_SSD_KERNEL"}

# Written only by plain_pytorch_paths(). A plain module flag, not a ContextVar: torch.compile guards on a global it
# reads, while ContextVar.get() breaks the graph.
_fused_allowed = True


def check_kernel(kernel: str, choices: tuple[str, ...] = KERNELS) -> str:
    """Validate a ``kernel`` knob at construction; returns it."""
    if kernel not in choices:
        raise ValueError(f"kernel must be one of {', '.join(choices)}, got {kernel!r}")
    return kernel


@contextmanager
def plain_pytorch_paths() -> Iterator[None]:
    """Within: FlexAttention and the Triton kernels are off, whatever the knobs say (SDPA keeps its kernel)."""
    global _fused_allowed
    previous, _fused_allowed = _fused_allowed, False
    try:
        yield
    finally:
        _fused_allowed = previous


def fused_kernels_allowed() -> bool:
    """False inside :func:`plain_pytorch_paths`."""
    return _fused_allowed


def _env_kernel(family: str) -> Optional[str]:
    """The knob an environment variable sets for ``family`` (None when unset or ``auto``)."""
    name = ENV_OVERRIDES.get(family)
    value = os.environ.get(name, "auto") if name else "auto"
    if value not in KERNELS:
        raise ValueError(f"environment variable {name} must be one of {', '.join(KERNELS)}, got {value!r}")
    return None if value == "auto" else value


def use_fused(kernel: str, family: str, unavailable: Optional[str] = None, slower: Optional[str] = None) -> bool:
    """Whether a call runs the ``family`` fused kernel (True) or the plain PyTorch path (False).

    Args:
        kernel: the mechanism's knob (``auto``, ``torch`` or ``fused``).
        family: ``flex``, ``favor`` or ``ssd`` (names the environment override, if any).
        unavailable: None when the fused kernel can serve this call, else why it cannot (the error of
            ``kernel="fused"``).
        slower: None, or why the fused kernel, though able to serve this call, is measured slower than the
            PyTorch path for it: then ``auto`` takes the PyTorch path and only ``fused`` the kernel.
    """
    if not fused_kernels_allowed():
        return False
    kernel = _env_kernel(family) or kernel
    if kernel == "torch" or (kernel == "auto" and slower is not None):
        return False
    if unavailable is None:
        return True
    if kernel == "fused":
        raise RuntimeError(
            f"kernel=fused, but the {family} kernel cannot run this call: {unavailable}. "
            "Set kernel: auto (fall back to PyTorch) or kernel: torch"
        )
    return False


def sdpa_backends(kernel: str, masked: bool, key_length: int, is_cuda: bool) -> Optional[tuple[str, ...]]:
    """The ``SDPBackend`` member names a ``scaled_dot_product_attention`` call may use; None = no restriction.

    On H100/H200 with torch 2.11, cuDNN's SDPA backward can return NaN gradients for the queries: reported with an
    explicit ``attn_mask`` and a key length of 64 modulo 128 (pytorch/pytorch#196678), and the project's training
    went NaN with *unmasked* 64-key calls too (docs/PERFORMANCE.md). So ``auto`` and ``fused`` allow cuDNN only for
    unmasked calls whose key length is a multiple of 128 (long sequences, where it is the fastest kernel); a pinned
    kernel is always obeyed. On CPU only ``torch`` restricts SDPA (to its math kernel).
    """
    if kernel == "torch":
        return ("MATH",)
    if not is_cuda:
        return None
    if kernel in SDPA_PINNED:
        return (SDPA_PINNED[kernel],)
    cudnn_safe = not masked and key_length % 128 == 0
    fused = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION") + (("CUDNN_ATTENTION",) if cudnn_safe else ())
    if kernel == "fused":
        return fused
    return None if cudnn_safe else fused + ("MATH",)


_compiled_functions: dict[Callable, Callable] = {}


def compiled_on_cuda(function: Callable, x: torch.Tensor) -> Callable:
    """``function`` (a plain function of tensors) under ``torch.compile`` when it runs on CUDA tensors like ``x``.

    For the element-wise glue around the Triton kernels, which eager PyTorch runs op by op through memory. Stays
    eager on CPU (no compiler needed), inside :func:`plain_pytorch_paths` (FLOPs countable), and inside a graph
    being compiled, which compiles it anyway (calling a compiled function from there would break the graph)."""
    if not x.is_cuda or not fused_kernels_allowed() or torch.compiler.is_compiling():
        return function
    if function not in _compiled_functions:
        _compiled_functions[function] = torch.compile(function, dynamic=None)
    return _compiled_functions[function]
