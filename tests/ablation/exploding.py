"""A test-only attention that runs out of (simulated) memory mid-training, to exercise failure isolation."""

from __future__ import annotations

from typing import Optional

import torch

from hierarchicalvlm.attention import FullAttention


class ExplodingAttention(FullAttention):
    """Full attention whose training forward raises ``torch.cuda.OutOfMemoryError`` after ``fail_after_calls``
    calls (validation/eval calls do not count), like a job that outgrows the device partway through."""

    def __init__(self, dim: int, num_heads: int, fail_after_calls: int = 2, **kwargs) -> None:
        super().__init__(dim, num_heads, **kwargs)
        self.fail_after_calls = fail_after_calls
        self.training_calls = 0

    def mix(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        if self.training and x.device.type != "meta":
            self.training_calls += 1
            if self.training_calls > self.fail_after_calls:
                raise torch.cuda.OutOfMemoryError(
                    "CUDA out of memory. Tried to allocate 64.00 GiB (simulated by tests/ablation/exploding.py)"
                )
        return super().mix(x, mask)
