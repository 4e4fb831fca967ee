"""Stop a run at its first non-finite loss or gradient, before the optimiser writes it into the weights.

A diverged run used to go on for epochs: NaN losses, NaN weights saved as checkpoints (one of them picked as
"best" and tested), exit status 0 and a summary saying ``completed``. :class:`NonFiniteGuard` checks every
optimiser step and raises :class:`NonFiniteError` ("non-finite loss at step N (epoch E)"); the job wrapper
records the run as ``diverged`` and exits non-zero. Checking costs one scalar copy to the host per step (and,
under data parallelism, one all-reduce of two numbers).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

HINT = "lower model.optimizer.lr or raise the warm-up; trainer.detect_anomaly=true names the operation that made it"


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss, gradient or weight: the run diverged."""

    def __init__(self, what: str, step: int, epoch: int, detail: str = "") -> None:
        self.what, self.step, self.epoch = what, step, epoch
        super().__init__(f"non-finite {what} at step {step} (epoch {epoch}){detail}; {HINT}")


def finite_norm(tensors: Iterable[Optional[torch.Tensor]]) -> torch.Tensor:
    """A 0-d bool tensor on the tensors' device: whether the total 2-norm of ``tensors`` is finite (what gradient
    clipping sees). One fused norm per device and dtype (``torch._foreach_norm``), no copy to the host."""
    tensors = [t.detach() for t in tensors if t is not None]
    if not tensors:
        return torch.tensor(True)
    norms = torch._foreach_norm(tensors)
    return torch.stack([n.float().to(norms[0].device) for n in norms]).isfinite().all()


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every element of every floating-point tensor is finite (exact, unlike a norm that overflows)."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        if torch.is_tensor(t) and t.is_floating_point():
            by_device.setdefault(t.device, []).append(torch.isfinite(t).all())
    return all(bool(torch.stack(flags).all()) for flags in by_device.values())  # one host copy per device


class NonFiniteGuard(Callback):
    """Raise :class:`NonFiniteError` at the first optimiser step whose loss or gradient is NaN or infinite.

    The loss is checked on the device as each backward starts (every accumulated micro-batch); the decision is
    read once per optimiser step, before the step, so the weights are never updated with a non-finite
    gradient. A checkpoint whose weights are not all finite is never written.

    Args:
        check_gradients: also check the gradient norm (skipped under fp16 loss scaling, whose scaler skips
            such steps by design).
    """

    def __init__(self, check_gradients: bool = True) -> None:
        self.check_gradients = check_gradients
        self._loss_bad: Optional[torch.Tensor] = None
        self._loss: Optional[torch.Tensor] = None

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        bad = ~torch.isfinite(loss.detach())
        if self._loss_bad is None:
            self._loss_bad, self._loss = bad, loss.detach()
        else:
            self._loss = torch.where(bad, loss.detach(), self._loss)
            self._loss_bad = self._loss_bad | bad

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        device = pl_module.device
        loss_bad = self._loss_bad if self._loss_bad is not None else torch.tensor(False, device=device)
        grads_bad = torch.tensor(False, device=device)
        if self.check_gradients and getattr(trainer.precision_plugin, "scaler", None) is None:
            grads_bad = ~finite_norm(p.grad for group in optimizer.param_groups for p in group["params"])
        flags = torch.stack([loss_bad.to(device), grads_bad.to(device)]).float()
        if trainer.world_size > 1:  # every rank must stop at the same step, or the others hang in a collective
            flags = trainer.strategy.reduce(flags, reduce_op="sum")
        loss_flag, grad_flag = (bool(v) for v in flags.tolist())
        loss = self._loss
        self._loss_bad = self._loss = None
        if loss_flag:
            value = f": train loss {float(loss)}" if loss is not None and trainer.world_size == 1 else ""
            raise NonFiniteError("loss", trainer.global_step, trainer.current_epoch, value)
        if grad_flag:
            raise NonFiniteError("gradient norm", trainer.global_step, trainer.current_epoch, " (the loss was finite)")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Refuse to write a checkpoint whose weights are not all finite (raising here aborts the save)."""
        if not all_finite(checkpoint.get("state_dict", {}).values()):
            raise NonFiniteError("weights", trainer.global_step, trainer.current_epoch, " (checkpoint not written)")
