"""The job wrapper behind ``train.py``: job summaries, friendly config errors and a final metrics table."""

from __future__ import annotations

import logging
import sys
from typing import Optional

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

import hierarchicalvlm.run.resolvers  # noqa: F401  (registers ${hvlm.*} resolvers)
from hierarchicalvlm.callbacks.interrupt import RunInterrupted
from hierarchicalvlm.callbacks.nonfinite import NonFiniteError
from hierarchicalvlm.run.config_checks import ConfigError
from hierarchicalvlm.run.evaluation import evaluation_config, override_key
from hierarchicalvlm.run.job import Job, JobBusyError
from hierarchicalvlm.run.pipeline import run

log = logging.getLogger(__name__)

# Overrides whose values are file paths: a sweep's job folders are named after their overrides
# (``attention=local,data.needle_depth=[0.9,1.0]``), which Hydra's override grammar would read as syntax.
PATH_KEYS = ("ckpt_path", "hydra.run.dir", "hydra.sweep.dir")
PATH_PREFIXES = ("paths.",)
_GRAMMAR_CHARACTERS = set("=,[]{}()'\" \t$")


def quote_path_overrides(argv: list[str]) -> list[str]:
    """Quote the values of path overrides (``ckpt_path=<run>/checkpoints/last.ckpt``) that Hydra would misparse.

    Lets ``ckpt_path=`` name a checkpoint inside a sweep's job folder as it is, without the user quoting it;
    values already quoted, and every other argument, pass unchanged."""
    quoted = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        name = override_key(arg)
        is_path = name in PATH_KEYS or name.startswith(PATH_PREFIXES)
        if sep and is_path and value[:1] not in ("'", '"') and _GRAMMAR_CHARACTERS & set(value):
            quote = "'" if "'" not in value else '"'
            if quote not in value:
                arg = f"{key}={quote}{value}{quote}"
        quoted.append(arg)
    return quoted


def print_metrics(metrics: dict[str, float]) -> None:
    table = Table(title="final metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        table.add_row(key, f"{metrics[key]:.4f}")
    Console().print(table)


def run_job(cfg: DictConfig) -> Optional[float]:
    """Run one job and record it in ``<output_dir>/summary.json``; return its ``optimized_metric`` (what a
    hyper-parameter search maximises), None when the run did not produce it.

    ``train=false`` with a ``ckpt_path`` evaluates that checkpoint with the config of the run it came from
    (:func:`.evaluation.evaluation_config`).

    Exit statuses of a single run: 2 for a config mistake (including an unusable ``ckpt_path``), 1 for a run
    that diverged (non-finite loss) or whose folder another process holds, each with one line and no traceback;
    143 / 130 when SIGTERM / SIGINT stopped it (``last.ckpt`` saved at that step). Other failures raise. In a
    multirun a failed or diverged job is recorded and the sweep goes on (returns None); a signal ends the sweep.
    """
    try:
        outcome = Job(evaluation_config(cfg), run).execute()
    except ConfigError as err:
        _exit(2, f"config error: {err}")
    except (NonFiniteError, JobBusyError) as err:
        _exit(1, f"{'diverged' if isinstance(err, NonFiniteError) else 'error'}: {err}")
    except RunInterrupted as err:
        _exit(err.exit_code, f"{err}; resume with ckpt_path=<run folder>/checkpoints/last.ckpt "
                             "(a sweep resumes by itself when the same command runs again)")
    if outcome.status == "completed":
        print_metrics(outcome.metrics)
    return outcome.metrics.get(str(cfg.get("optimized_metric") or ""))


def _exit(code: int, message: str) -> None:
    log.error(message)
    print(message, file=sys.stderr)
    sys.exit(code)
