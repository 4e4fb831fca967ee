"""DDP inside a Hydra multirun: start each job's extra ranks as single runs of that one job.

Lightning starts ranks 1..N-1 by running the script again with ``sys.argv``. In a multirun that argv is
the whole sweep (``-m attention=full,performer``), so every extra rank would launch the sweep again and
make its own output folders. :func:`job_rank_command` gives Lightning a command that runs only the
current job instead: its own overrides, its folder as ``hydra.run.dir``, no ``-m``. Single runs keep
Lightning's own command. :func:`distributed_state_per_job` undoes what one job's ranks leave behind, so that
the next job of the sweep starts its own ranks.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch

from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
from lightning.pytorch.strategies.launchers import subprocess_script as trainer_launcher

_lightning_command: Callable[[int], tuple[Sequence[str], str]] = fabric_launcher._hydra_subprocess_cmd
_resume_from: Optional[str] = None


def job_rank_command(local_rank: int) -> tuple[list[str], str]:
    """The command (and working directory) that starts rank ``local_rank`` of the current Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from hydra.utils import get_original_cwd, to_absolute_path

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        command, cwd = _lightning_command(local_rank)
        return list(command), cwd
    import __main__

    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    overrides = list(hydra_cfg.overrides.task)
    if _resume_from is not None:  # rank 0 resumes this job from its last checkpoint: so must every rank
        overrides = [o for o in overrides if not o.lstrip("+~").startswith("ckpt_path=")]
        overrides.append(f'ckpt_path="{_resume_from}"')
    command += overrides
    command += [
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        f"hydra.job.name={hydra_cfg.job.name}_rank{local_rank}",
        "hydra.output_subdir=null",  # rank 0 already wrote this job's .hydra/
    ]
    return command, get_original_cwd()


def launch_ranks_per_job(resume_from: Optional[str] = None) -> None:
    """Make Lightning's subprocess launcher use :func:`job_rank_command` (idempotent).

    ``resume_from``: the checkpoint a resumed sweep job continues from, passed on to the other ranks.
    """
    global _resume_from
    _resume_from = resume_from
    for module in (fabric_launcher, trainer_launcher):
        module._hydra_subprocess_cmd = job_rank_command


# What Lightning's launcher writes into the main process's environment when it starts the extra ranks.
LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def distributed_state_per_job() -> Iterator[None]:
    """Run one job of a multirun, then tear down its process group and restore the launcher's variables.

    Otherwise the next job sees ``LOCAL_RANK`` set, takes its ranks for launched already, and talks to the
    previous job's process group, whose other ranks have exited.
    """
    saved = {name: os.environ.get(name) for name in LAUNCHER_ENV}
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
