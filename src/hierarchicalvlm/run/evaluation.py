"""Evaluating a checkpoint with the config of the run that wrote it, so ``ckpt_path`` alone is enough.

``python train.py train=false test=true ckpt_path=<run>/checkpoints/last.ckpt``:

* the run folder's ``.hydra/overrides.yaml`` is composed again, with the user's own overrides after it (they win:
  data paths, trainer, loggers...); the model and attention the checkpoint records
  (:mod:`.model_identity`) then replace the composed ones unless the user overrode them, so a checkpoint whose
  folder is gone still evaluates. An override that contradicts the checkpoint's model is refused by
  :func:`.model_identity.check_model_identity`, naming both;
* the outputs go beside the run, in ``<run>/eval/<timestamp>/`` (:func:`beside_run`, the ``hydra.run.dir``
  resolver), not among training runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hierarchicalvlm.run.checkpoint_io import read_checkpoint
from hierarchicalvlm.run.config_checks import ConfigError
from hierarchicalvlm.run.model_identity import IDENTITY_KEY

log = logging.getLogger(__name__)

EVAL_DIR = "eval"
# what the evaluation command itself decides, never taken from the run's overrides
OWN_KEYS = frozenset({"train", "test", "ckpt_path"})


def run_folder_of(ckpt_path: Any) -> Optional[Path]:
    """The run folder holding ``ckpt_path`` (``<run>/checkpoints/<file>`` with ``<run>/.hydra/overrides.yaml``)."""
    if not ckpt_path:
        return None
    path = Path(str(ckpt_path)).expanduser().resolve()
    run_dir = path.parent.parent
    if path.parent.name == "checkpoints" and (run_dir / ".hydra" / "overrides.yaml").is_file():
        return run_dir
    return None


def evaluates_a_run(train: Any, ckpt_path: Any) -> bool:
    """Whether a config with these ``train`` and ``ckpt_path`` values evaluates a checkpoint."""
    return train is False and bool(ckpt_path)


def beside_run(default: str, *, _root_: DictConfig) -> str:
    """``hydra.run.dir``: ``<run>/eval/<name of default>`` when evaluating a run folder's checkpoint, else
    ``default`` (a training run's folder)."""
    run_dir = run_folder_of(_root_.get("ckpt_path")) if evaluates_a_run(_root_.get("train"), _root_.get("ckpt_path")) else None
    return str(run_dir / EVAL_DIR / Path(default).name) if run_dir is not None else default


def override_key(override: str) -> str:
    """The key an override sets: ``attention`` for ``attention=mamba``, ``data.root`` for ``+data.root=x``."""
    return override.split("=", 1)[0].lstrip("+~")


def set_by(key: str, user_keys: set[str]) -> bool:
    """Whether an override of ``key`` is decided by the user's overrides: the same key or one above it
    (``attention=full`` decides ``attention.num_features``; ``model/visual=clip`` decides ``model.visual.grid``)."""
    dotted = key.replace("/", ".")
    return any(dotted == k or dotted.startswith(k + ".") for k in (u.replace("/", ".") for u in user_keys))


def user_overrides() -> list[str]:
    """The overrides given on the command line of this run ([] outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def set_choices(choices: dict[str, Any]) -> None:
    """Record the config-group choices the evaluation really uses, so the run's identity names them."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    runtime = HydraConfig.get().runtime
    with read_write(runtime), open_dict(runtime):
        runtime.choices.update({k: v for k, v in choices.items() if v is not None})


def compose_run_config(run_dir: Path, overrides: list[str]) -> Optional[DictConfig]:
    """The config of the run in ``run_dir`` composed again, ``overrides`` (the user's) after its own; None outside a
    Hydra app (there is nothing to compose with)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    if not (GlobalHydra.instance().is_initialized() and HydraConfig.initialized()):
        return None
    mine = {override_key(o) for o in overrides} | OWN_KEYS
    saved = [str(o) for o in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")]
    merged = [o for o in saved if not set_by(override_key(o), mine)] + overrides
    try:
        composed = compose(config_name=HydraConfig.get().job.config_name, overrides=merged, return_hydra_config=True)
    except Exception as err:  # noqa: BLE001 - Hydra's composition errors come in many types
        raise ConfigError(f"the config of {run_dir} with your overrides does not compose ({err}); "
                          f"its overrides: {saved}") from None
    set_choices(OmegaConf.to_container(composed.hydra.runtime.choices))
    with read_write(composed), open_dict(composed):
        del composed["hydra"]
    log.info("evaluating %s with its run's config (%s), overrides: %s", run_dir, run_dir / ".hydra", merged)
    return composed


def use_checkpoint_model(cfg: DictConfig, checkpoint: dict[str, Any], overrides: list[str]) -> None:
    """Put the model the checkpoint records into ``cfg`` (its attention and network config), keeping what the
    user set on the command line: a whole ``attention=`` choice, or single keys such as ``attention.kernel``
    or ``model.net.dim`` (an override that contradicts the checkpoint is then refused by the identity check)."""
    identity = checkpoint.get(IDENTITY_KEY)
    if identity is None:
        return
    user_keys = {override_key(o).replace("/", ".") for o in overrides}
    sections = {"attention": (identity["attention"]["config"], {"attention"}),
                "model.net": (identity["net"], {"model", "model.net"})}
    with open_dict(cfg):
        for section, (recorded, whole) in sections.items():
            if user_keys & whole:
                continue
            kept = {k: OmegaConf.select(cfg, k) for k in user_keys if k.startswith(section + ".")}
            OmegaConf.update(cfg, section, recorded, merge=False)
            for key, value in kept.items():
                OmegaConf.update(cfg, key, value, force_add=True)
            if section == "attention":
                set_choices({"attention": identity["attention"]["name"]})


def evaluation_config(cfg: DictConfig) -> DictConfig:
    """``cfg``, or for ``train=false`` with a ``ckpt_path`` the config of the checkpoint's run (module docstring)."""
    ckpt_path = cfg.get("ckpt_path")
    if not evaluates_a_run(cfg.get("train", True), ckpt_path) or not Path(str(ckpt_path)).is_file():
        return cfg  # (a missing file is reported by the config checks)
    overrides = user_overrides()
    run_dir = run_folder_of(ckpt_path)
    composed = compose_run_config(run_dir, overrides) if run_dir is not None else None
    cfg = composed if composed is not None else cfg
    use_checkpoint_model(cfg, read_checkpoint(ckpt_path), overrides)
    return cfg
