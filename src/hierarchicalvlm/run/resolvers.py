"""OmegaConf resolvers used by the configs (``${hvlm.auto_precision:}`` …). Registered on import."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf


def auto_precision() -> str:
    """bf16 mixed precision where the GPU supports it, full fp32 elsewhere (CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def launch_dir() -> str:
    """The directory ``train.py`` was started from. Unlike ``${hydra:runtime.cwd}`` it also resolves while a
    multirun's sweep folder is computed, before any job's Hydra config exists."""
    return os.getcwd()


_claimed: dict[str, str] = {}


def fresh_dir(path: str) -> str:
    """``path``, or else ``path_2``, ``path_3``…: the first of them this process manages to create. ``mkdir`` is
    atomic, so two runs started in the same second from one folder never share a run folder (they used to
    overwrite each other's summary and checkpoints). The claim is remembered: resolving again in the same
    process returns the same folder."""
    if path not in _claimed:
        candidate, n = path, 1
        while True:
            try:
                Path(candidate).mkdir(parents=True, exist_ok=False)
                break
            except FileExistsError:
                n += 1
                candidate = f"{path}_{n}"
        _claimed[path] = candidate
    return _claimed[path]


def wandb_offline() -> bool:
    """Offline unless the user asked for online mode or provided an API key: never block on the network."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("online", "run"):
        return False
    if mode in ("offline", "dryrun", "disabled"):
        return True
    return not os.environ.get("WANDB_API_KEY")


def curriculum_epochs(num_frames: int, start_frames: int, epochs_per_stage: int, final_epochs: int) -> int:
    """Epochs of a length curriculum (``data.curriculum``) that doubles from ``start_frames`` to ``num_frames``,
    ``epochs_per_stage`` per length, plus ``final_epochs`` more at the full length: ``trainer.max_epochs``
    of a sweep over lengths, so every job ends with the same training at its own length."""
    from hierarchicalvlm.data.synthetic import LengthCurriculum

    curriculum = LengthCurriculum.from_config(
        {"start_frames": int(start_frames), "epochs_per_stage": int(epochs_per_stage)}, int(num_frames))
    return curriculum.first_full_epoch + int(final_epochs)


def run_name(*, _root_: DictConfig) -> str:
    """The loggers' name of the run, ``<attention>-<frames>f-s<seed>`` (:func:`.identity.run_name`)."""
    from hierarchicalvlm.run.identity import run_identity, run_name as name_of

    return name_of(run_identity(_root_))


def beside_run(default: str, *, _root_: DictConfig) -> str:
    """``hydra.run.dir`` of an evaluation of a run folder's checkpoint: ``<run>/eval/<timestamp>`` (else ``default``)."""
    from hierarchicalvlm.run.evaluation import beside_run as folder

    return folder(default, _root_=_root_)


def register_resolvers() -> None:
    resolvers = {"auto_precision": auto_precision, "wandb_offline": wandb_offline, "run_name": run_name,
                 "launch_dir": launch_dir, "curriculum_epochs": curriculum_epochs, "fresh_dir": fresh_dir,
                 "beside_run": beside_run}
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(f"hvlm.{name}"):
            OmegaConf.register_new_resolver(f"hvlm.{name}", fn)


register_resolvers()

# ${hvlm.choices_help:} of `train.py --help` (conf/hydra/help/train.yaml) registers itself on import
import hierarchicalvlm.run.help  # noqa: E402,F401
