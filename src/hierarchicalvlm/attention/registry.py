"""The list of mechanisms is the folder ``conf/attention/``: one YAML per mechanism, nothing else registers one.

Training picks a mechanism with ``attention=<name>``: Hydra composes ``conf/attention/<name>.yaml`` (a partial whose
``_target_`` is the class) and the model calls it with ``dim`` and ``num_heads``. :func:`build_mechanism` builds one
by name the same way — the YAML composed by Hydra, so a file may inherit another through its defaults list, as
``local.yaml`` does ``local_global.yaml`` — for the benchmark and the tests.

Adding a mechanism: a :class:`~hierarchicalvlm.attention.base.SequenceMixer` subclass and one YAML in
``conf/attention/``; the contract tests, the config tests and the benchmark pick it up.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .base import SequenceMixer

_REPO_CONF = Path(__file__).resolve().parents[3] / "conf" / "attention"
# The checkout's conf/attention (also for an editable install); otherwise the working directory's.
CONF_DIR = _REPO_CONF if _REPO_CONF.is_dir() else Path.cwd() / "conf" / "attention"


def mechanism_names(conf_dir: str | Path = CONF_DIR) -> list[str]:
    """The names of the mechanisms: the YAML files of ``conf_dir``, sorted."""
    return sorted(p.stem for p in Path(conf_dir).glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def _composed(conf_dir: Path, name: str) -> dict[str, Any]:
    """``conf_dir/<name>.yaml`` composed by Hydra as training composes it (defaults lists applied), as a dict."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    outer = get_gh_backup()  # a running Hydra app (or test) keeps its own state
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir.parent)):
            cfg = compose(overrides=[f"+{conf_dir.name}={name}"])
    finally:
        restore_gh_from_backup(outer)
    return OmegaConf.to_container(cfg[conf_dir.name])


def mechanism_config(name: str, conf_dir: str | Path = CONF_DIR) -> DictConfig:
    """The partial config of mechanism ``name`` (a fresh copy: changing it changes nothing else)."""
    conf_dir = Path(conf_dir).resolve()
    known = mechanism_names(conf_dir)
    if name not in known:
        raise ValueError(f"unknown attention {name!r}; choose one of: {', '.join(known)} (files of {conf_dir})")
    return OmegaConf.create(_composed(conf_dir, name))


def build_mechanism(
    name: str, dim: int, num_heads: int, conf_dir: str | Path = CONF_DIR, **knobs: Any
) -> SequenceMixer:
    """``instantiate(conf/attention/<name>.yaml)(dim=..., num_heads=..., **knobs)``, as the model builds it.

    ``knobs`` replace the YAML's values, e.g. ``build_mechanism("strided", 64, 4, stride=8)``.
    """
    from hydra.utils import instantiate

    return instantiate(mechanism_config(name, conf_dir))(dim=dim, num_heads=num_heads, **knobs)
