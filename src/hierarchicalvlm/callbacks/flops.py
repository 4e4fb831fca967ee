"""FLOPs of one training batch (forward + backward), measured once per job for FLOPs/s and MFU.

The count comes from :func:`lightning.fabric.utilities.throughput.measure_flops` (PyTorch's
``FlopCounterMode``) run on a *copy* of the network, so the real model's weights, gradients, random
state and internal counters (e.g. Performer's feature-redraw counter) are untouched. The copy lives
on the meta device when every operation supports it (no memory, no compute), otherwise on the
batch's device.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from contextlib import nullcontext
from typing import Any, ContextManager, Iterator, Optional

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.fabric.utilities.throughput import measure_flops
from torch.utils.flop_counter import flop_registry, register_flop_formula, sdpa_backward_flop_count, sdpa_flop_count

from hierarchicalvlm.attention.ops.kernel_policy import plain_pytorch_paths

log = logging.getLogger(__name__)
aten = torch.ops.aten


def _register_cpu_flash_attention_formulas() -> None:
    """Count CPU ``scaled_dot_product_attention`` kernels like their CUDA siblings.

    PyTorch's FLOP table covers the CUDA flash/efficient/cuDNN kernels but not the CPU flash kernel, so
    on CPU full attention would count zero FLOPs. The formulas are PyTorch's own ``sdpa_*_flop_count``.
    """
    forward = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    backward = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if forward is not None and forward not in flop_registry:

        @register_flop_formula(forward)
        def _cpu_flash_forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query_shape, key_shape, value_shape)

    if backward is not None and backward not in flop_registry:

        @register_flop_formula(backward)
        def _cpu_flash_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
            return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_register_cpu_flash_attention_formulas()


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside a (possibly nested) tensor, dataclass, mapping or sequence."""
    if torch.is_tensor(value):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from tensors_in(getattr(value, field.name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_in(item)


def sum_of_outputs(output: Any) -> torch.Tensor:
    """A scalar that depends on every floating-point tensor of a model output: its backward reaches every
    parameter that produced the output, so forward + backward FLOPs are counted in full."""
    totals = [t.float().sum() for t in tensors_in(output) if t.is_floating_point()]
    if not totals:
        raise TypeError(f"the model output ({type(output).__name__}) holds no floating-point tensor")
    return torch.stack(totals).sum()


def uncompiled(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with every ``torch.compile`` wrapper inside it replaced by the original module (in place):
    FLOPs are counted eagerly, without compiling a copy."""
    from torch._dynamo.eval_frame import OptimizedModule

    if isinstance(module, OptimizedModule):
        return uncompiled(module._orig_mod)
    for name, child in list(module.named_children()):
        setattr(module, name, uncompiled(child))
    return module


def detached_copy(module: torch.nn.Module) -> torch.nn.Module:
    """An uncompiled deep copy of ``module`` that leaves out a LightningModule's trainer (and with it the data)."""
    if not isinstance(module, L.LightningModule):
        return uncompiled(copy.deepcopy(module))
    trainer = module._trainer
    module._trainer = None
    try:
        return uncompiled(copy.deepcopy(module))
    finally:
        module._trainer = trainer


def _count(module: torch.nn.Module, batch: Any, device: torch.device, context: ContextManager) -> int:
    model = detached_copy(module).to(device)
    model.train()
    inputs = move_data_to_device(batch, device)
    # Fused kernels are opaque to the counter: count the same computation on the plain PyTorch paths.
    with context, plain_pytorch_paths():
        return int(measure_flops(model, lambda: model(inputs), loss_fn=sum_of_outputs))


def measure_training_flops(
    module: torch.nn.Module, batch: Any, context: Optional[ContextManager] = None
) -> Optional[int]:
    """Forward + backward FLOPs of ``module(batch)``; None when neither the meta device nor a real copy can run it.

    Args:
        module: the model; it is copied, never run itself.
        batch: one training batch as the model's ``forward`` takes it (already on the training device).
        context: e.g. the trainer's autocast context, entered around the real-device measurement.
    """
    try:
        return _count(module, batch, torch.device("meta"), nullcontext())
    except Exception as err:  # noqa: BLE001 - some kernels have no meta implementation: fall back below
        log.debug("FLOPs on the meta device failed (%s: %s); measuring on a real copy", type(err).__name__, err)
    device = next((t.device for t in tensors_in(batch)), torch.device("cpu"))
    rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
    try:
        with rng:
            return _count(module, batch, device, context or nullcontext())
    except Exception as err:  # noqa: BLE001 - e.g. out of memory at the longest lengths: FLOPs stay unknown
        log.warning("could not measure FLOPs per batch (%s: %s); FLOPs/s and MFU will be missing", type(err).__name__, err)
        return None
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()

