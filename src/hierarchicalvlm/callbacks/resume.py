"""Faithful resume: a run continued from a checkpoint trains on the same batches, with the same random numbers,
as the run that was never stopped.

Two things decide what a step computes besides the weights and the optimiser: which samples the batch holds
and the random number streams (dropout, Performer feature draws, data workers' seeds). Neither is in a Lightning
checkpoint, and a plain ``DataLoader(shuffle=True)`` draws each epoch's order from the global RNG, so after a
resume every later batch differed. :class:`FaithfulResume` (added by the pipeline to every run):

* replaces the training loader's sampler by a :class:`ResumableSampler`, whose order is a pure function of
  (seed, epoch) like ``DistributedSampler``'s (it *is* one, so data parallelism keeps its sharding), and gives
  the loader a generator of its own for the workers' seeds, so loading consumes nothing of the global RNG;
* writes into every checkpoint where in the data the run is (epoch, batches done) and the RNG states (torch,
  CUDA, numpy, Python); on resume it restores the RNG states as training starts and makes the sampler skip the
  batches the epoch had already trained on (indices only: nothing is loaded to skip them).
"""

from __future__ import annotations

import itertools
import logging
import random
import warnings
from typing import Any, Iterator, Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

log = logging.getLogger(__name__)

RESUME_KEY = "hvlm_resume"
# Lightning warns that a mid-epoch resume is unreliable unless the loader implements state_dict(); this callback
# resumes the data order itself (from the loop's progress), so the warning does not apply.
_MID_EPOCH_WARNING = "You're resuming from a checkpoint that ended before the epoch ended"


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (order from ``seed + epoch``; this rank's share) that can skip the first samples of
    its next pass, for a run resumed in the middle of an epoch. Also serves a single process (one replica)."""

    def __init__(self, dataset: Any, num_replicas: int, rank: int, shuffle: bool, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.worker_generator = torch.Generator()  # the loader's: seeds its workers (and nothing else)
        self._skip = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.worker_generator.manual_seed((self.seed + 1) * 1_000_003 + epoch)

    def skip_next(self, samples: int) -> None:
        """Leave out the first ``samples`` indices of the next pass (``batches done x batch size``)."""
        self._skip = samples

    def __iter__(self) -> Iterator[int]:
        skip, self._skip = self._skip, 0
        return itertools.islice(super().__iter__(), skip, None)


def resumable_loader(loader: DataLoader, seed: int, world_size: int, rank: int) -> DataLoader:
    """``loader`` rebuilt around a :class:`ResumableSampler` (same dataset, batch size, workers, collate…).

    A loader with a sampler it does not know (a custom one, a batch sampler) is returned unchanged, with a
    warning that its mid-epoch resume is not exact.
    """
    sampler = loader.sampler
    if isinstance(sampler, ResumableSampler) or loader.batch_size is None:
        return loader
    if isinstance(sampler, DistributedSampler):
        world_size, rank, shuffle, seed = sampler.num_replicas, sampler.rank, sampler.shuffle, sampler.seed
    elif isinstance(sampler, (RandomSampler, SequentialSampler)) and not getattr(sampler, "replacement", False):
        shuffle = isinstance(sampler, RandomSampler)
    else:
        log.warning("train loader with a %s: its order after a mid-epoch resume is not guaranteed",
                    type(sampler).__name__)
        return loader
    new_sampler = ResumableSampler(loader.dataset, world_size, rank, shuffle, seed)
    workers = loader.num_workers
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=new_sampler,
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=new_sampler.worker_generator,
        prefetch_factor=loader.prefetch_factor if workers > 0 else None,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device,
    )


def rng_states() -> dict[str, Any]:
    """The global random states, as plain containers and tensors (what a weights-only load accepts)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # this device's stream only: ranks are seeded alike and advance alike, so rank 0's is every rank's
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


class FaithfulResume(Callback):
    """Resumable training data order and random states (see the module docstring).

    Args:
        seed: the run's seed (``seed``): the data order of epoch ``e`` is drawn from ``seed + e``.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._resume: Optional[dict[str, Any]] = None

    @property
    def state_key(self) -> str:
        return "FaithfulResume"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if stage != "fit" or datamodule is None or getattr(datamodule, "_resumable_train_loader", False):
            return
        make_loader = datamodule.train_dataloader

        def train_dataloader() -> DataLoader:
            loader = resumable_loader(make_loader(), self.seed, trainer.world_size, trainer.global_rank)
            if isinstance(loader.sampler, ResumableSampler) and self._resume is not None:
                data = self._resume["data"]
                loader.sampler.set_epoch(data["epoch"])
                loader.sampler.skip_next(data["batches"] * int(loader.batch_size))
            return loader

        datamodule.train_dataloader = train_dataloader  # Lightning asks the data module for it at fit start
        datamodule._resumable_train_loader = True
        warnings.filterwarnings("ignore", message=_MID_EPOCH_WARNING)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        progress = trainer.fit_loop.epoch_loop.batch_progress
        epoch_done = progress.is_last_batch  # saved after the epoch's last batch: the next one starts afresh
        checkpoint[RESUME_KEY] = {
            "data": {"epoch": trainer.current_epoch + 1 if epoch_done else trainer.current_epoch,
                     "batches": 0 if epoch_done else int(progress.current.processed)},
            "rng": rng_states(),
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != TrainerFn.FITTING:  # testing a checkpoint: nothing to resume
            return
        self._resume = checkpoint.get(RESUME_KEY)
        if self._resume is None:
            log.warning("the checkpoint does not record its data position and random states (written before "
                        "faithful resume existed): the resumed run will not repeat the uninterrupted one exactly")
        else:
            data = self._resume["data"]
            log.info("resuming the data order at epoch %d after %d batches", data["epoch"], data["batches"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the last moment before the first step: nothing Lightning does at start-up may consume the restored states
        if self._resume is not None:
            set_rng_states(self._resume["rng"])
        self._resume = None
