"""One job of a run or a sweep, wrapped: summary.json, failure isolation, resume, one wandb run per job.

* Every job writes ``<output_dir>/summary.json`` (:mod:`.summary`).
* In a multirun, a job that raises (out of memory, a bad combination, a :class:`ConfigError`) is recorded
  as failed and the sweep goes on; a single run still fails loudly.
* In a multirun whose job folders are stable (``hydra.sweep.subdir: ${hydra.job.override_dirname}``),
  running the same command again skips jobs whose summary says ``completed`` and continues the others
  from ``checkpoints/last.ckpt`` (``sweep_resume: false`` turns this off).
* wandb: the jobs of one sweep share a group (``sweep_name``, else the sweep folder's name), carry
  their attention/frames/length/seed as tags and config, and each ends with ``wandb.finish()``.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from hierarchicalvlm.callbacks.memory import free_memory, peak_memory, reset_all_peaks
from hierarchicalvlm.callbacks.throughput import LongRangeThroughputMonitor
from hierarchicalvlm.utils.hydra_ddp import distributed_state_per_job, launch_ranks_per_job

from . import tracking
from .summary import COMPLETED, FAILED, JobSummary, job_identity, read_summary, resolved_config

log = logging.getLogger(__name__)

RunFn = Callable[..., dict[str, float]]
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


@dataclass
class JobOutcome:
    """How a job ended: ``completed``, ``failed`` (the error kept) or ``skipped`` (already completed)."""

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: Optional[BaseException] = None
    job_dir: Optional[Path] = None


@dataclass(frozen=True)
class SweepContext:
    """Where a job sits: its folder, whether it is part of a multirun, its sweep's name and job key."""

    job_dir: Path
    multirun: bool
    sweep_name: Optional[str]
    override_dirname: Optional[str]
    job_num: Optional[int]

    @classmethod
    def of(cls, cfg: DictConfig) -> "SweepContext":
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        job_dir = Path(str(cfg.paths.output_dir))
        if not HydraConfig.initialized():
            return cls(job_dir, False, cfg.get("sweep_name"), None, None)
        hydra_cfg = HydraConfig.get()
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        name = cfg.get("sweep_name") or (Path(str(hydra_cfg.sweep.dir)).name if multirun else None)
        return cls(
            job_dir=job_dir,
            multirun=multirun,
            sweep_name=name,
            override_dirname=OmegaConf.select(hydra_cfg, "job.override_dirname", default=None),
            job_num=OmegaConf.select(hydra_cfg, "job.num", default=None),
        )


def _throughput_callback(trainer: Optional[L.Trainer]) -> Optional[LongRangeThroughputMonitor]:
    if trainer is None:
        return None
    return next((cb for cb in trainer.callbacks if isinstance(cb, LongRangeThroughputMonitor)), None)


def _measurements(trainer: Optional[L.Trainer]) -> tuple[Optional[torch.device], dict[str, Any], dict[str, Any]]:
    """Device, steady-state throughput (possibly partial) and peak memory of a finished or failed job."""
    device = trainer.strategy.root_device if trainer is not None else None
    callback = _throughput_callback(trainer)
    throughput = (callback.summary or callback.current_summary()) if callback is not None else {}
    peak = peak_memory(device or torch.device("cpu"))
    return device, throughput, peak.as_dict()


class AblationJob:
    """Runs ``run_fn(cfg, on_build=...)`` (``pipeline.run``) as one recorded, isolatable, resumable job."""

    def __init__(self, cfg: DictConfig, run_fn: RunFn) -> None:
        self.cfg = cfg
        self.run_fn = run_fn
        self.context = SweepContext.of(cfg)
        self.resume = bool(cfg.get("sweep_resume", True)) and self.context.multirun

    def execute(self) -> JobOutcome:
        """Run the job; in a multirun any exception is recorded and returned instead of raised."""
        job_dir = self.context.job_dir
        previous = read_summary(job_dir)
        if self.resume and previous is not None and previous["status"] == COMPLETED:
            log.info("skipping %s: its summary.json says completed", job_dir)
            return JobOutcome("skipped", dict(previous.get("metrics") or {}), job_dir=job_dir)

        resumed_from = self._resume_checkpoint() if self.resume else None
        launch_ranks_per_job(resume_from=resumed_from)
        identity = job_identity(self.cfg)
        tracking.annotate_wandb(self.cfg, identity, self.context.sweep_name if self.context.multirun else None)
        summary = JobSummary(
            job_dir, identity, resolved_config(self.cfg),
            sweep_name=self.context.sweep_name,
            override_dirname=self.context.override_dirname,
            job_num=self.context.job_num,
            attempt=int((previous or {}).get("attempt", 0)) + 1,
            resumed_from=resumed_from,
        )
        summary.start()
        reset_all_peaks()
        built: dict[str, L.Trainer] = {}
        try:
            with distributed_state_per_job() if self.context.multirun else nullcontext():
                metrics = self.run_fn(self.cfg, on_build=lambda trainer: built.__setitem__("trainer", trainer))
        except Exception as err:  # noqa: BLE001 - recorded; re-raised unless this is one job of a multirun
            return self._failed(err, summary, identity, built.get("trainer"))
        else:
            device, throughput, peak = _measurements(built.get("trainer"))
        finally:
            built.clear()
            free_memory()
        summary.complete(device, metrics, throughput, peak)
        tracking.finish_wandb(identity, metrics, throughput, COMPLETED)
        return JobOutcome(COMPLETED, metrics, job_dir=job_dir)

    def _failed(self, err: Exception, summary: JobSummary, identity: dict[str, Any],
                trainer: Optional[L.Trainer]) -> JobOutcome:
        """Record the failure; raise it again in a single run, return it in a multirun."""
        device, throughput, peak = _measurements(trainer)
        summary.fail(err, device, throughput, peak)
        tracking.finish_wandb(identity, {}, throughput, FAILED)
        if not self.context.multirun:
            raise err
        log.error("job %s failed: %s: %s (the sweep goes on; details in its summary.json)",
                  self.context.job_dir, type(err).__name__, err)
        err.__traceback__ = None  # drop the frames that still hold this job's tensors
        return JobOutcome(FAILED, error=err, job_dir=self.context.job_dir)

    def _resume_checkpoint(self) -> Optional[str]:
        """Point ``ckpt_path`` at the job's ``last.ckpt`` when an earlier attempt left one (and none is set)."""
        last = self.context.job_dir / LAST_CHECKPOINT
        if self.cfg.get("ckpt_path") or not last.is_file():
            return None
        with open_dict(self.cfg):
            self.cfg.ckpt_path = str(last)
        log.info("resuming %s from %s", self.context.job_dir, last)
        return str(last)
