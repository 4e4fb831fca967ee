"""Whether mechanisms may run their fused GPU kernels (FlexAttention, Triton) or must take the plain PyTorch paths.

The plain paths compute the same results from ordinary aten operations, which PyTorch's ``FlopCounterMode`` can
count; a fused kernel is opaque to it (a Triton custom op counts zero FLOPs), and compiling FlexAttention under
the counter fails and leaves dynamo's cache poisoned for the training graph that follows. So the FLOP count of a
training job (``callbacks/flops.py``) runs inside :func:`plain_pytorch_paths`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

_fused_allowed = True


def fused_kernels_allowed() -> bool:
    """False inside :func:`plain_pytorch_paths`."""
    return _fused_allowed


@contextmanager
def plain_pytorch_paths() -> Iterator[None]:
    """Within: every mechanism takes its plain PyTorch path (same result, no fused kernel)."""
    global _fused_allowed
    previous, _fused_allowed = _fused_allowed, False
    try:
        yield
    finally:
        _fused_allowed = previous
