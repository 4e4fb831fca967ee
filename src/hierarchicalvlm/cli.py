"""The job wrapper behind ``train.py``: job summaries, friendly config errors and a final metrics table."""

from __future__ import annotations

import logging
import sys
from typing import Optional

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

import hierarchicalvlm.utils.resolvers  # noqa: F401  (registers ${hvlm.*} resolvers)
from hierarchicalvlm.ablation.job import AblationJob
from hierarchicalvlm.pipeline import run
from hierarchicalvlm.utils.config_checks import ConfigError

log = logging.getLogger(__name__)

OBJECTIVE = "val/qa_acc"


def print_metrics(metrics: dict[str, float]) -> None:
    table = Table(title="final metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        table.add_row(key, f"{metrics[key]:.4f}")
    Console().print(table)


def run_job(cfg: DictConfig) -> Optional[float]:
    """Run one job and record it in ``<output_dir>/summary.json``.

    A single run that fails raises (a config mistake prints one line and exits with status 2, no
    traceback); in a multirun the failure is recorded and the sweep goes on (returns None).
    """
    try:
        outcome = AblationJob(cfg, run).execute()
    except ConfigError as err:
        log.error("config error: %s", err)
        print(f"config error: {err}", file=sys.stderr)
        sys.exit(2)
    if outcome.status == "completed":
        print_metrics(outcome.metrics)
    return outcome.metrics.get(OBJECTIVE)
