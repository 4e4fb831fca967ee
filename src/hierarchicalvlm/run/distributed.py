"""Helpers for multi-GPU strategies."""

from __future__ import annotations


from torch.distributed.fsdp.wrap import ModuleWrapPolicy


def block_wrap_policy() -> ModuleWrapPolicy:
    """FSDP auto-wrap policy: one unit per transformer block (the repeated, parameter-heavy part)."""
    from hierarchicalvlm.attention import AttentionBlock

    return ModuleWrapPolicy({AttentionBlock})
