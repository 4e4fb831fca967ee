"""One run of ``train.py``, alone or a job of a sweep, wrapped: summary.json, failure isolation, resume, wandb.

* Every job writes ``<output_dir>/summary.json`` (:mod:`.summary`).
* In a multirun, a job that raises (out of memory, a bad combination, a :class:`ConfigError`) is recorded
  as failed and the sweep goes on; a single run still fails loudly.
* In a multirun whose job folders are stable (``hydra.sweep.subdir: ${hydra.job.override_dirname}``),
  running the same command again skips jobs whose summary says ``completed`` and continues the others
  from ``checkpoints/last.ckpt`` (``sweep_resume: false`` turns this off).
* wandb: the jobs of one sweep share a group (``sweep_name``, else the sweep folder's name), carry
  their attention/frames/length/seed as tags and config, and each ends with ``wandb.finish()``.
* One runner per job: a job holds ``<job dir>/.lock`` while it runs. A second copy of the same sweep skips
  the jobs another process is running (their summaries untouched); a single run refuses a busy folder.
* A run that diverges (non-finite loss) is recorded as ``diverged`` and handled like a failure. SIGTERM/SIGINT
  (:mod:`hierarchicalvlm.callbacks.interrupt`) record the job as ``interrupted`` and stop a sweep as well:
  running the command again resumes it.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from filelock import FileLock, Timeout
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from hierarchicalvlm.callbacks.interrupt import RunInterrupted, shutdown_data_workers, signals_handled
from hierarchicalvlm.callbacks.memory import free_memory, reset_all_peaks
from hierarchicalvlm.callbacks.nonfinite import NonFiniteError
from hierarchicalvlm.run import tracking
from hierarchicalvlm.run.hydra_ddp import distributed_state_per_job, launch_ranks_per_job
from hierarchicalvlm.run.identity import run_identity
from hierarchicalvlm.run.result import RunResult, partial_result
from hierarchicalvlm.run.summary import (COMPLETED, DIVERGED, FAILED, INTERRUPTED, JobSummary, read_summary,
                                         resolved_config)

log = logging.getLogger(__name__)

RunFn = Callable[[DictConfig], RunResult]
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
LOCK_FILE = ".lock"
SKIPPED, BUSY = "skipped", "busy"


class JobBusyError(RuntimeError):
    """The run folder is in use by another process (a single run refuses to share it)."""


@dataclass
class JobOutcome:
    """How a job ended: ``completed``, ``failed`` or ``diverged`` (the error kept), ``skipped`` (already
    completed) or ``busy`` (another process is running it)."""

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


class _NoLock:
    """The lock of a data-parallel rank other than 0: nothing to hold."""

    def release(self) -> None:
        pass


class Job:
    """Runs ``run_fn(cfg)`` (:func:`.pipeline.run`) as one recorded, isolatable, resumable job: every run of
    ``train.py``, single or one of a sweep, is one."""

    def __init__(self, cfg: DictConfig, run_fn: RunFn) -> None:
        self.cfg = cfg
        self.run_fn = run_fn
        self.context = SweepContext.of(cfg)
        self.resume = bool(cfg.get("sweep_resume", True)) and self.context.multirun

    def execute(self) -> JobOutcome:
        """Run the job; in a multirun any exception is recorded and returned instead of raised.

        :class:`RunInterrupted` (SIGTERM/SIGINT) is recorded and always raised: it ends a sweep too.
        """
        lock = self._lock()
        if lock is None:
            return JobOutcome(BUSY, job_dir=self.context.job_dir)
        try:
            with signals_handled():
                return self._execute()
        finally:
            lock.release()

    def _lock(self) -> Optional[FileLock | _NoLock]:
        """Take ``<job dir>/.lock`` (rank 0 only: the other ranks of a data-parallel job share their rank 0's).

        Returns None in a multirun when another process holds it; raises :class:`JobBusyError` in a single run.
        """
        if getattr(rank_zero_only, "rank", 0) != 0:
            return _NoLock()
        job_dir = self.context.job_dir
        job_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(job_dir / LOCK_FILE)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if self.context.multirun:
                log.warning("skipping %s: another process is running this job (it holds %s)", job_dir, lock.lock_file)
                return None
            raise JobBusyError(f"run folder {job_dir} is in use by another process (it holds {lock.lock_file}); "
                               "wait for it, or give this run its own folder (hydra.run.dir=...)") from None
        return lock

    def _execute(self) -> JobOutcome:
        job_dir = self.context.job_dir
        previous = read_summary(job_dir)
        if self.resume and previous is not None and previous["status"] == COMPLETED:
            log.info("skipping %s: its summary.json says completed", job_dir)
            return JobOutcome(SKIPPED, dict(previous.get("metrics") or {}), job_dir=job_dir)

        resumed_from = self._resume_checkpoint() if self.resume else None
        launch_ranks_per_job(resume_from=resumed_from)
        identity = run_identity(self.cfg)
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
        try:
            with distributed_state_per_job() if self.context.multirun else nullcontext():
                result = self.run_fn(self.cfg)
        except (RunInterrupted, SIGTERMException) as err:
            interrupted = err if isinstance(err, RunInterrupted) else RunInterrupted(15)
            self._record(interrupted, summary, identity, partial_result(err), INTERRUPTED)
            log.error("job %s %s; running the same command again resumes it", job_dir, interrupted)
            raise interrupted from None
        except NonFiniteError as err:
            return self._failed(err, summary, identity, DIVERGED)
        except Exception as err:  # noqa: BLE001 - recorded; re-raised unless this is one job of a multirun
            return self._failed(err, summary, identity, FAILED)
        finally:
            shutdown_data_workers()  # a failed job's persistent workers would otherwise outlive it
            free_memory()
        summary.complete(result)
        tracking.finish_wandb(identity, result.metrics, result.throughput, COMPLETED)
        return JobOutcome(COMPLETED, result.metrics, job_dir=job_dir)

    def _record(self, err: BaseException, summary: JobSummary, identity: dict[str, Any], result: RunResult,
                status: str) -> None:
        summary.fail(err, result, status=status)
        tracking.finish_wandb(identity, {}, result.throughput, status)

    def _failed(self, err: Exception, summary: JobSummary, identity: dict[str, Any], status: str) -> JobOutcome:
        """Record the failure (``failed`` or ``diverged``); raise it again in a single run, return it in a multirun."""
        self._record(err, summary, identity, partial_result(err), status)
        if not self.context.multirun:
            raise err
        log.error("job %s %s: %s: %s (the sweep goes on; details in its summary.json)",
                  self.context.job_dir, status, type(err).__name__, err)
        err.__traceback__ = None  # drop the frames that still hold this job's tensors
        return JobOutcome(status, error=err, job_dir=self.context.job_dir)

    def _resume_checkpoint(self) -> Optional[str]:
        """Point ``ckpt_path`` at the job's ``last.ckpt`` when an earlier attempt left one (and none is set)."""
        last = self.context.job_dir / LAST_CHECKPOINT
        if self.cfg.get("ckpt_path") or not last.is_file():
            return None
        with open_dict(self.cfg):
            self.cfg.ckpt_path = str(last)
        log.info("resuming %s from %s", self.context.job_dir, last)
        return str(last)
