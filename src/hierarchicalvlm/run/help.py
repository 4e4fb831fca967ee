"""``python train.py --help``: every config group and a line per choice saying what it means.

A choice's line is the first comment line at the top of its YAML (``conf/<group>/<choice>.yaml``); choices whose
file opens without a comment take theirs from ``hydra.help.descriptions`` (``conf/hydra/help/train.yaml``).
The ``${hvlm.choices_help:...}`` resolver renders the list inside Hydra's help template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from omegaconf import OmegaConf

WIDTH = 118


def describe(path: Path) -> Optional[str]:
    """The first comment line at the top of a YAML file (``# @package`` lines skipped), or None."""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            return None
        text = stripped.lstrip("#").strip()
        if text and not text.startswith("@package"):
            return text
    return None


def choices_help(conf_dir: Path, fallback: Optional[Mapping[str, str]] = None, width: int = WIDTH) -> str:
    """``group=choice  description`` lines for every group under ``conf_dir`` (Hydra's own groups left out), each
    at most ``width`` characters."""
    fallback = dict(fallback or {})
    groups = sorted({p.parent.relative_to(conf_dir).as_posix() for p in conf_dir.rglob("*.yaml")
                     if p.parent != conf_dir})
    rows: list[tuple[str, str]] = []
    for group in groups:
        if group == "hydra" or group.startswith("hydra/"):
            continue
        rows.append((f"{group}:", ""))
        for path in sorted((conf_dir / group).glob("*.yaml")):
            text = describe(path) or fallback.get(f"{group}/{path.stem}")
            missing = "(no description: add a comment line at the top of the file)"
            rows.append((f"  {group}={path.stem}", text or missing))
    column = max(len(name) for name, text in rows if text) + 2
    lines = []
    for name, text in rows:
        room = max(20, width - column)
        if len(text) > room:
            text = text[: room - 1].rstrip() + "…"
        lines.append(f"{name:<{column}}{text}".rstrip())
    return "\n".join(lines)


def _main_config_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    for source in HydraConfig.get().runtime.config_sources:
        if source.provider == "main" and source.schema == "file":
            return Path(str(source.path))
    raise RuntimeError("the help template needs the primary config folder (a file config source)")


def _resolver(fallback: Any = None) -> str:
    container = OmegaConf.to_container(fallback) if OmegaConf.is_config(fallback) else fallback
    return choices_help(_main_config_dir(), container)


if not OmegaConf.has_resolver("hvlm.choices_help"):
    OmegaConf.register_new_resolver("hvlm.choices_help", _resolver)
