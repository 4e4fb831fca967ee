"""One training/evaluation job from a composed Hydra config: validate, build, fit, test, report."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from hierarchicalvlm.callbacks.summary import trainer_switches
from hierarchicalvlm.data.base import VideoTextDataModule
from hierarchicalvlm.text import tokenizer_factory
from hierarchicalvlm.utils.checkpoint_io import AtomicCheckpointIO
from hierarchicalvlm.utils.config_checks import validate_config
from hierarchicalvlm.utils.rich_config import print_config_tree

log = logging.getLogger(__name__)


def instantiate_group(group: Optional[DictConfig]) -> list[Any]:
    """Instantiate every entry of a dict-of-configs group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if isinstance(entry, DictConfig) and "_target_" in entry]


def restore_vocab(datamodule: VideoTextDataModule, ckpt_path: Optional[str]) -> None:
    """Load the checkpoint's vocabularies into the data module so ids match the trained model."""
    if not ckpt_path:
        return
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    state = checkpoint.get(type(datamodule).__qualname__)
    if state:
        datamodule.load_state_dict(state)


def build(cfg: DictConfig) -> tuple[VideoTextDataModule, L.LightningModule, L.Trainer]:
    """Data module, model and trainer of a validated config."""
    datamodule: VideoTextDataModule = instantiate(cfg.data)
    datamodule.tokenizer_factory = tokenizer_factory(cfg.model.get("text"))  # the text choice's tokenizer
    restore_vocab(datamodule, cfg.get("ckpt_path"))
    inputs = datamodule.model_inputs()
    model = instantiate(cfg.model, inputs=inputs, attention=instantiate(cfg.attention), _recursive_=False)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not loggers:  # nothing to report learning rates to (logger=none): Lightning would refuse the monitor
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
        **{key: value for key, value in trainer_switches(callbacks).items() if key not in cfg.trainer},
    )
    return datamodule, model, trainer


def log_config(trainer: L.Trainer, model: L.LightningModule, cfg: DictConfig) -> None:
    params = OmegaConf.to_container(cfg, resolve=True)
    params["num_params"] = sum(p.numel() for p in model.parameters())
    for logger in trainer.loggers:
        logger.log_hyperparams(params)


def metrics_of(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}


def run(cfg: DictConfig, on_build: Optional[Callable[[L.Trainer], None]] = None) -> dict[str, float]:
    """Train and/or test as the config says; return the final metrics.

    ``on_build`` receives the trainer once it exists (the job wrapper reads its callbacks' measurements).
    """
    validate_config(cfg)
    if cfg.get("extras", {}).get("print_config"):
        print_config_tree(cfg, save_to=Path(cfg.paths.output_dir) / "config_tree.log")
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    if on_build is not None:
        on_build(trainer)
    log_config(trainer, model, cfg)
    output_dir = Path(cfg.paths.output_dir)
    datamodule.save_vocab(output_dir / "tokenizer")  # beside, not in, checkpoints/ (Lightning warns on a used one)

    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        # our own checkpoints hold the (omegaconf) hyper-parameters, which weights_only loading refuses
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=False)
        metrics.update(metrics_of(trainer))
    if cfg.get("test", False):
        ckpt = cfg.get("ckpt_path") if not cfg.get("train", True) else best_checkpoint(trainer)
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=False)
        metrics.update(metrics_of(trainer))
    return metrics


def best_checkpoint(trainer: L.Trainer) -> Optional[str]:
    """The best checkpoint of this run, or None (test the weights in memory) when none was written."""
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path and os.path.exists(callback.best_model_path):
        return callback.best_model_path
    return None
