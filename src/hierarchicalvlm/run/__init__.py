"""One run of ``train.py``, everything it takes in one place.

* :mod:`.cli` — ``run_job``, what ``train.py`` calls: exit statuses, the final metrics table;
* :mod:`.job` — :class:`Job`, one recorded, isolatable, resumable run (alone or a job of a sweep);
* :mod:`.pipeline` — ``run(cfg)``: data, model, loggers, callbacks, trainer in reading order, fit and test,
  returning a :class:`RunResult` (:mod:`.result`);
* :mod:`.evaluation` — ``train=false ckpt_path=...`` evaluates with the checkpoint's own run config;
* :mod:`.identity` — what a run is (attention, frames, length, seed), for its summary, tags and name;
* :mod:`.summary`, :mod:`.tracking` — ``summary.json`` and wandb bookkeeping of each job;
* :mod:`.config_checks`, :mod:`.resolvers`, :mod:`.help`, :mod:`.config_tree` — the config before the run;
* :mod:`.checkpoint_io`, :mod:`.model_identity` — safe, atomic checkpoints that record their model;
* :mod:`.hydra_ddp`, :mod:`.distributed` — DDP ranks per sweep job, the FSDP wrap policy.
"""

from .job import Job, JobOutcome
from .result import RunResult

__all__ = ["Job", "JobOutcome", "RunResult"]
