"""hparams_search=optuna: a 2-trial Optuna study through Hydra's sweeper, one trial failing without ending it."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra

from .conftest import ROOT, TINY

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")


def test_optuna_search_survives_a_failed_trial(tmp_path: Path, monkeypatch) -> None:
    import hierarchicalvlm.run.cli as cli

    calls = []
    real_run = cli.run

    def first_trial_fails(cfg, **kwargs):  # the first trial dies the way a bad sampled config would
        calls.append(cfg.model.net.dim)
        if len(calls) == 1:
            raise RuntimeError("simulated failure of the first trial")
        return real_run(cfg, **kwargs)

    monkeypatch.setattr(cli, "run", first_trial_fails)
    sweep_dir = tmp_path / "sweep"
    args = ["train.py", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "logger=none",
            *[o for o in TINY if not o.startswith("model.net.dim")], "debug=limit", "trainer.max_epochs=1",
            "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "test=false",
            "callbacks.throughput.measure_flops=false", "extras.print_config=false",
            f"hydra.sweep.dir={sweep_dir}",
            f"paths.log_dir={tmp_path / 'logs'}"]
    monkeypatch.setattr(sys, "argv", args)
    GlobalHydra.instance().clear()
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")  # in-process: the monkeypatch above holds
    except SystemExit as exit_:  # hydra exits 0 on success
        assert not exit_.code
    finally:
        GlobalHydra.instance().clear()

    assert len(calls) == 2
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep_dir.glob("*/summary.json"))
    assert statuses == ["completed", "failed"]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna" and 0.0 <= results["best_value"] <= 1.0
    assert set(results["best_params"]) == {"model.optimizer.lr", "model.optimizer.weight_decay", "model.net.dim",
                                           "model.net.level2_depth"}
