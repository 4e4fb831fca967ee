"""One training/evaluation run from a composed Hydra config: validate, build, fit, test, return what it measured.

Every trainer built here also carries the reliability callbacks that no config can remove: the checkpoint
records its model (:mod:`.model_identity`), resume is faithful (:mod:`hierarchicalvlm.callbacks.resume`), signals
stop at a step boundary with a checkpoint (:mod:`hierarchicalvlm.callbacks.interrupt`), and a non-finite loss stops the run
(:mod:`hierarchicalvlm.callbacks.nonfinite`; configured in ``conf/callbacks/default.yaml``, added with its defaults if absent).
A ``ckpt_path`` is opened weights-only and checked against the configured model before anything is built.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path
from typing import Any, Optional

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Checkpoint, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig, OmegaConf

from hierarchicalvlm.callbacks.interrupt import GracefulStop, raise_if_signalled, shield_data_workers
from hierarchicalvlm.run.model_identity import RecordModelIdentity, check_model_identity, model_identity
from hierarchicalvlm.callbacks.nonfinite import NonFiniteGuard
from hierarchicalvlm.callbacks.resume import FaithfulResume
from hierarchicalvlm.callbacks.summary import trainer_switches
from hierarchicalvlm.data.base import VideoTextDataModule
from hierarchicalvlm.text import tokenizer_factory
from hierarchicalvlm.run.checkpoint_io import AtomicCheckpointIO, read_checkpoint
from hierarchicalvlm.run.config_checks import validate_config
from hierarchicalvlm.run.config_tree import print_config_tree
from hierarchicalvlm.run.result import RunResult, attach_result, measure

log = logging.getLogger(__name__)


def instantiate_group(group: Optional[DictConfig]) -> list[Any]:
    """Instantiate every entry of a dict-of-configs group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if isinstance(entry, DictConfig) and "_target_" in entry]


def open_checkpoint(cfg: DictConfig) -> Optional[dict[str, Any]]:
    """The ``ckpt_path`` checkpoint (weights-only, memory-mapped), refused with one clear line when it is
    unreadable or holds another model than the config builds; None without ``ckpt_path``."""
    path = cfg.get("ckpt_path")
    if not path:
        return None
    checkpoint = read_checkpoint(path)
    check_model_identity(checkpoint, cfg, str(path))
    return checkpoint


def restore_vocab(datamodule: VideoTextDataModule, checkpoint: Optional[dict[str, Any]]) -> None:
    """Load the checkpoint's vocabularies into the data module so ids match the trained model."""
    state = (checkpoint or {}).get(type(datamodule).__qualname__)
    if state:
        datamodule.load_state_dict(state)


def keep_previous_logs(loggers: list[Logger]) -> None:
    """Move an earlier attempt's ``metrics.csv`` aside (``metrics.1.csv``, ``metrics.2.csv``…): Lightning's CSV
    logger deletes the file it finds, so a resumed job would lose the steps logged before it stopped."""
    if getattr(rank_zero_only, "rank", 0) != 0:
        return
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        current = Path(logger.log_dir) / "metrics.csv"
        if current.is_file():
            n = 1
            while (current.parent / f"metrics.{n}.csv").exists():
                n += 1
            current.rename(current.parent / f"metrics.{n}.csv")
            log.info("kept the earlier attempt's %s as metrics.%d.csv", current, n)


def use_fork_for_data_workers() -> None:
    """Inside a joblib sweep worker (``hydra/launcher=joblib``) the default start method is loky's, which pickles
    what a data worker needs (the data module, and through it the trainer) and fails; start the data workers by
    fork, as a plain run does on Linux."""
    if multiprocessing.get_start_method(allow_none=True) == "loky" and "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)


def reliability_callbacks(cfg: DictConfig, configured: list[Any]) -> list[Any]:
    """The callbacks every run gets whatever ``callbacks=`` says (see the module docstring)."""
    extra: list[Any] = [] if any(isinstance(c, NonFiniteGuard) for c in configured) else [NonFiniteGuard()]
    extra += [RecordModelIdentity(model_identity(cfg)), FaithfulResume(cfg.seed)]
    if cfg.trainer.get("enable_checkpointing", True) is not False:  # (a one-step probe sets it: nothing to save)
        if not any(isinstance(c, Checkpoint) for c in configured):
            extra.append(ModelCheckpoint())  # what Lightning adds when no checkpoint callback is configured
        extra.append(GracefulStop(Path(str(cfg.paths.output_dir)) / "checkpoints" / "last.ckpt"))
    return extra


def build_model(cfg: DictConfig, inputs: dict[str, Any]) -> L.LightningModule:
    """The LightningModule of ``cfg.model`` with ``cfg.attention`` at level 2. Both are passed as plain containers:
    they become the checkpoint's hyper-parameters, which must load with ``weights_only=True`` and are enough for
    ``HierarchicalVLMModule.load_from_checkpoint(path)`` to rebuild the model."""
    return instantiate(cfg.model, inputs=inputs, attention=OmegaConf.to_container(cfg.attention, resolve=True),
                       _recursive_=False, _convert_="all")


def build_callbacks(cfg: DictConfig, loggers: list[Logger]) -> list[Any]:
    """The configured callbacks, then the reliability callbacks every run gets."""
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not loggers:  # nothing to report learning rates to (logger=none): Lightning would refuse the monitor
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return callbacks + reliability_callbacks(cfg, callbacks)


def build_trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Logger]) -> L.Trainer:
    """The Trainer of ``cfg.trainer``; the progress bar and model summary follow their ``callbacks.*`` switches."""
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
        **{key: value for key, value in trainer_switches(callbacks).items() if key not in cfg.trainer},
    )


def log_config(trainer: L.Trainer, model: L.LightningModule, cfg: DictConfig) -> None:
    params = OmegaConf.to_container(cfg, resolve=True)
    params["num_params"] = sum(p.numel() for p in model.parameters())
    for logger in trainer.loggers:
        logger.log_hyperparams(params)


def metrics_of(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}


def build(cfg: DictConfig, checkpoint: Optional[dict[str, Any]] = None
          ) -> tuple[VideoTextDataModule, L.LightningModule, L.Trainer]:
    """Data, model, loggers, callbacks and trainer of a validated config, in that order (``checkpoint``: the
    opened ``ckpt_path``, whose vocabularies the data module takes)."""
    datamodule: VideoTextDataModule = instantiate(cfg.data)
    datamodule.tokenizer_factory = tokenizer_factory(cfg.model.get("text"))  # the text choice's tokenizer
    shield_data_workers(datamodule)  # a signal to the process group must not kill the data workers mid-step
    restore_vocab(datamodule, checkpoint)
    model = build_model(cfg, datamodule.model_inputs())
    loggers = instantiate_group(cfg.get("logger"))
    keep_previous_logs(loggers)
    callbacks = build_callbacks(cfg, loggers)
    trainer = build_trainer(cfg, callbacks, loggers)
    return datamodule, model, trainer


def run(cfg: DictConfig) -> RunResult:
    """Train and/or test as the config says; return the metrics and what the run measured.

    Validate, open ``ckpt_path``, seed, :func:`build`, fit, test. Should anything fail once the trainer exists,
    the exception carries the run's measurements so far (:func:`.result.partial_result`).
    """
    validate_config(cfg)
    if cfg.get("extras", {}).get("print_config"):
        print_config_tree(cfg, save_to=Path(cfg.paths.output_dir) / "config_tree.log")
    checkpoint = open_checkpoint(cfg)
    use_fork_for_data_workers()
    L.seed_everything(cfg.seed, workers=True)

    datamodule, model, trainer = build(cfg, checkpoint)
    del checkpoint  # Lightning reads the file again, fully, when it restores

    metrics: dict[str, float] = {}
    try:
        log_config(trainer, model, cfg)
        datamodule.save_vocab(Path(cfg.paths.output_dir) / "tokenizer")  # beside checkpoints/ (Lightning warns on a used one)
        if cfg.get("train", True):
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
            raise_if_signalled()  # a signal during the last step: training is saved, the test is left for the resume
            metrics.update(metrics_of(trainer))
        if cfg.get("test", False):
            ckpt = cfg.get("ckpt_path") if not cfg.get("train", True) else best_checkpoint(trainer)
            trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
            metrics.update(metrics_of(trainer))
    except BaseException as err:
        attach_result(err, measure(trainer))
        raise
    return measure(trainer, metrics, best_checkpoint(trainer))


def best_checkpoint(trainer: L.Trainer) -> Optional[str]:
    """The best checkpoint of this run (of its first ``ModelCheckpoint`` that monitors a metric, else its first
    one), or None (test the weights in memory) when none was written."""
    callbacks = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    callbacks.sort(key=lambda c: c.monitor is None)
    for callback in callbacks[:1]:
        if callback.best_model_path and os.path.exists(callback.best_model_path):
            return callback.best_model_path
    return None
