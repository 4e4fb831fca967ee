"""The composed config as a rich tree at the start of a run (``extras.print_config``), saved beside the run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import rich
import rich.syntax
import rich.tree
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

ORDER = ("data", "model", "attention", "callbacks", "logger", "trainer", "paths", "extras")


@rank_zero_only
def print_config_tree(cfg: DictConfig, save_to: Optional[Path] = None, order: Sequence[str] = ORDER) -> None:
    """Print every top-level section of ``cfg`` (resolved; Hydra's own node left out), the main groups first, and
    write the same text to ``save_to`` when given."""
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order and k != "hydra"]
    for key in keys:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        tree.add(key, style="dim", guide_style="dim").add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        with open(save_to, "w") as file:
            rich.print(tree, file=file)
