"""SIGTERM and SIGINT: finish the current step, save ``last.ckpt`` there, and stop with 128 + the signal number.

A job runs inside :func:`signals_handled`. While a run trains (:class:`GracefulStop` is in every trainer the
pipeline builds), the first SIGTERM or SIGINT only raises a flag; the run stops at the next safe point (the end
of the training batch; of the epoch, after its validation and checkpoints, for its last batch), writes ``checkpoints/last.ckpt`` at that step and raises
:class:`RunInterrupted`. A second signal, or a signal outside training (data set-up, testing), raises it at once.
The job wrapper records the job as ``interrupted`` (a sweep resumes it the next time the command runs) and
``train.py`` exits with 143 (SIGTERM) or 130 (SIGINT); in a multirun this ends the sweep.
"""

from __future__ import annotations

import atexit
import gc
import logging
import multiprocessing.util  # noqa: F401  (its exit hook must be registered before ours, below)
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Optional

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(BaseException):
    """A signal stopped the run (a ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` may
    swallow it). ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int, step: Optional[int] = None, checkpoint: Optional[str] = None) -> None:
        self.signum, self.step, self.checkpoint = int(signum), step, checkpoint
        where = f"at step {step}; saved {checkpoint}" if checkpoint else "outside training; nothing to save"
        super().__init__(f"interrupted by {signal.Signals(self.signum).name} {where}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: a joblib worker sends it back to the sweep
        return type(self), (self.signum, self.step, self.checkpoint)


class _SignalState:
    """What the handler knows: whether a run is training (then it defers) and the signal received, if any."""

    def __init__(self) -> None:
        self.training = False
        self.received: Optional[int] = None
        self.trainer: Optional[L.Trainer] = None


STATE = _SignalState()


def _handler(signum: int, frame: Optional[FrameType]) -> None:
    if STATE.training and STATE.received is None:
        STATE.received = signum
        log.warning("received %s: stopping after the current step and saving last.ckpt (send it again to stop "
                    "at once)", signal.Signals(signum).name)
        launcher = getattr(STATE.trainer.strategy, "launcher", None) if STATE.trainer is not None else None
        if launcher is not None and hasattr(launcher, "kill"):
            launcher.kill(signum)  # the data-parallel ranks this process started stop at the same step
        return
    raise RunInterrupted(signum)


def _install() -> dict[int, Any]:
    """Point SIGTERM and SIGINT at :func:`_handler`; return the handlers replaced (nothing off the main thread,
    where Python cannot set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    for signum in HANDLED:
        signal.signal(signum, _handler)
    return previous


@contextmanager
def signals_handled() -> Iterator[None]:
    """Handle SIGTERM/SIGINT as described in the module docstring for the duration of one job."""
    previous = _install()
    STATE.received, STATE.training, STATE.trainer = None, False, None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        STATE.received, STATE.training, STATE.trainer = None, False, None


def raise_if_signalled() -> None:
    """Raise :class:`RunInterrupted` if a signal arrived (e.g. during the last training step) and was deferred."""
    if STATE.received is not None:
        raise RunInterrupted(STATE.received)


class _IgnoreStopSignals:
    """A data-loader ``worker_init_fn`` that makes the worker ignore SIGTERM and SIGINT, then runs ``inner``.

    ``timeout``, SLURM and Ctrl-C signal the whole process group: a worker killed by the signal made the main
    process fail at its next batch ("DataLoader worker exited unexpectedly"), before it could save. Ignoring
    them leaves the stop to the main process, which shuts its workers down as it exits (and a worker whose main
    process is gone exits by itself)."""

    def __init__(self, inner: Optional[Any]) -> None:
        self.inner = inner

    def __call__(self, worker_id: int) -> None:
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_IGN)
        if self.inner is not None:
            self.inner(worker_id)


def shutdown_data_workers() -> int:
    """Stop every data-loader worker still running, through its loader's own shutdown; returns how many loaders.

    Workers ignore SIGTERM (:class:`_IgnoreStopSignals`), so Python's exit hook for child processes, which
    sends SIGTERM and then joins, would wait for them forever — as it did for a job that failed mid-epoch with
    persistent workers (its loader kept alive by the traceback). Called when a job ends and at exit."""
    from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

    # type(), not isinstance(): isinstance() reads __class__, which warns on some deprecated torch objects
    loaders = [obj for obj in gc.get_objects() if issubclass(type(obj), _MultiProcessingDataLoaderIter)]
    for loader in loaders:
        loader._shutdown_workers()
    return len(loaders)


# Registered after multiprocessing's own exit hook (its module is imported above), so it runs first: atexit is
# last in, first out.
atexit.register(shutdown_data_workers)


def shield_data_workers(datamodule: Any) -> None:
    """Make the workers of every loader ``datamodule`` returns ignore SIGTERM/SIGINT (:class:`_IgnoreStopSignals`).

    Lightning gives a loader without ``worker_init_fn`` its seeding function when ``seed_everything(workers=True)``
    ran; that function is kept, inside ours. Such workers are stopped at exit by :func:`shutdown_data_workers`."""
    from functools import partial

    from lightning.fabric.utilities.seed import pl_worker_init_function

    def shielded(make: Any) -> Any:
        def loader_fn() -> Any:
            loader = make()
            if getattr(loader, "num_workers", 0) > 0 and not isinstance(loader.worker_init_fn, _IgnoreStopSignals):
                inner = loader.worker_init_fn
                if inner is None and int(os.environ.get("PL_SEED_WORKERS", 0)):
                    trainer = getattr(datamodule, "trainer", None)
                    inner = partial(pl_worker_init_function, rank=trainer.global_rank if trainer is not None else 0)
                loader.worker_init_fn = _IgnoreStopSignals(inner)
            return loader
        return loader_fn

    for name in ("train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader"):
        if hasattr(datamodule, name):
            setattr(datamodule, name, shielded(getattr(datamodule, name)))


class GracefulStop(Checkpoint):
    """Stops training at the first safe point after SIGTERM/SIGINT, with ``last.ckpt`` written at that step.

    A :class:`~lightning.pytorch.callbacks.Checkpoint` so that Lightning runs it after the other checkpoint
    callbacks: the saved file holds their updated state (the best score of a validation that just ended).

    Args:
        last_path: where to write the checkpoint (``<run folder>/checkpoints/last.ckpt``, what resume reads).
    """

    def __init__(self, last_path: str | Path) -> None:
        self.last_path = str(last_path)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning's own SIGTERM handler (installed for fit) stops only at the end of an epoch and exits with 0
        if trainer.received_sigterm and STATE.received is None:
            STATE.received = signal.SIGTERM
        STATE.training, STATE.trainer = True, trainer
        _install()

    def _stop_if_signalled(self, trainer: L.Trainer) -> None:
        received = STATE.received is not None
        if trainer.world_size > 1:  # stop every rank at the same step, or the others hang in a collective
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        if not received:
            return
        signum = STATE.received or signal.SIGTERM
        STATE.training = False
        trainer.save_checkpoint(self.last_path)
        log.warning("saved %s at step %d after %s", self.last_path, trainer.global_step, signal.Signals(signum).name)
        raise RunInterrupted(signum, trainer.global_step, self.last_path)

    # After an epoch's last batch come its validation and the epoch-end checkpoints: a run stopped before them
    # would skip them on resume, so it stops at the epoch's end instead. A validation within the epoch
    # (val_check_interval < 1) is followed by its checkpoints at once, and the run stops after them.
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._stop_if_signalled(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        within_epoch = not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking and within_epoch:
            self._stop_if_signalled(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_signalled(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        STATE.training, STATE.trainer = False, None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        STATE.training, STATE.trainer = False, None
