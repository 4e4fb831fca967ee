"""Evaluating a run folder's checkpoint with the run's own config, and ``load_from_checkpoint`` from hparams."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from hierarchicalvlm.models import HierarchicalVLMModule
from hierarchicalvlm.run.cli import quote_path_overrides
from hierarchicalvlm.run.config_checks import ConfigError
from hierarchicalvlm.run.evaluation import evaluation_config
from hierarchicalvlm.run.pipeline import build_model, open_checkpoint

from ..conftest import TINY, compose_config, run_train_py

# a run unlike the defaults in attention (performer, not full) and in size (dim 48, one level-2 block)
RUN = [*TINY, "attention=performer", "attention.num_features=16", "model.net.dim=48", "model.net.level2_depth=1",
       "debug=limit", "trainer.max_epochs=1", "test=false", "logger=csv", "extras.print_config=false"]
EVAL = ["train=false", "test=true", "logger=none", "extras.print_config=false", "callbacks.progress_bar=null"]


@pytest.mark.slow
def test_a_run_folder_checkpoint_evaluates_alone_beside_its_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "attention=performer,data.needle_depth=[0.9,1.0]"  # named as a sweep names its job folders
    trained = run_train_py([*RUN, f"hydra.run.dir={run_dir}", f"paths.log_dir={tmp_path / 'logs'}"])
    assert trained.returncode == 0, trained.stderr[-2000:]
    ckpt = run_dir / "checkpoints" / "last.ckpt"

    evaluated = run_train_py([*EVAL, f"ckpt_path={ckpt}", f"paths.log_dir={tmp_path / 'logs'}"])
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    (eval_dir,) = (run_dir / "eval").iterdir()  # beside the run, not under logs/
    summary = json.loads((eval_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["attention"] == "performer"
    assert summary["config"]["model"]["net"]["dim"] == 48 and summary["config"]["attention"]["num_features"] == 16
    assert 0.0 <= summary["metrics"]["test/qa_acc"] <= 1.0
    assert not (tmp_path / "logs").exists()

    # a contradicting override is refused before any compute (in-process: what train.py turns into exit status 2)
    cfg = compose_config(quote_path_overrides([*EVAL, f"ckpt_path={ckpt}", "attention=full"]), tmp_path / "refused")
    with pytest.raises(ConfigError) as refused:
        open_checkpoint(evaluation_config(cfg))
    assert "checkpoint 'performer'" in str(refused.value) and "this run 'full'" in str(refused.value)


def test_path_overrides_are_quoted_only_where_hydra_would_misread_them() -> None:
    job = "logs/sweep/attention=local,data.needle_depth=[0.9,1.0]/checkpoints/last.ckpt"
    assert quote_path_overrides([f"ckpt_path={job}", f"+paths.log_dir={job}", "attention=local,full", "seed=1"]) == [
        f"ckpt_path='{job}'", f"+paths.log_dir='{job}'", "attention=local,full", "seed=1"]
    plain = ["ckpt_path=logs/run/last.ckpt", "ckpt_path='a=b/last.ckpt'", "ckpt_path=null"]
    assert quote_path_overrides(plain) == plain
    assert quote_path_overrides(["ckpt_path=it's=here"]) == ['ckpt_path="it\'s=here"']


def test_load_from_checkpoint_gives_the_trained_modules_outputs(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("attention=local_global", "attention.window_size=8", "model.net.dim=48")
    L.seed_everything(0)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg, datamodule.model_inputs())
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=datamodule)
    path = tmp_path / "trained.ckpt"
    trainer.save_checkpoint(path)

    loaded = HierarchicalVLMModule.load_from_checkpoint(path, weights_only=True)
    batch = next(iter(datamodule.val_dataloader()))
    model.eval(), loaded.eval()
    with torch.no_grad():
        expected, actual = model(batch), loaded(batch)
    assert loaded.hparams.attention["window_size"] == 8
    torch.testing.assert_close(actual.qa_logits, expected.qa_logits)
    torch.testing.assert_close(actual.video_embedding, expected.video_embedding)
    assert not torch.equal(expected.qa_logits, torch.zeros_like(expected.qa_logits))


def test_a_lone_checkpoint_brings_its_model_and_the_users_model_overrides_stay(make_cfg, tmp_path: Path) -> None:
    """Without its run folder, the checkpoint's recorded model replaces the configured one; what the user set on
    the command line stays (for the identity check to refuse when it contradicts the checkpoint)."""
    from hierarchicalvlm.run.evaluation import evaluation_config
    from hierarchicalvlm.run.model_identity import IDENTITY_KEY, model_identity

    trained = make_cfg("attention=performer", "attention.num_features=16", "model.net.dim=48", tiny=False)
    ckpt = tmp_path / "lone.ckpt"
    torch.save({"state_dict": {}, IDENTITY_KEY: model_identity(trained)}, ckpt)
    evaluate = ["train=false", "test=true", f"ckpt_path={ckpt}"]

    cfg = evaluation_config(make_cfg(*evaluate, tiny=False))
    assert model_identity(cfg) == model_identity(trained)  # attention name, its config and the network

    cfg = evaluation_config(make_cfg(*evaluate, "attention.kernel=torch", "model.net.num_heads=2", tiny=False))
    assert (cfg.attention.num_features, cfg.attention.kernel) == (16, "torch")
    assert (cfg.model.net.dim, cfg.model.net.num_heads) == (48, 2)

    cfg = evaluation_config(make_cfg(*evaluate, "attention=full", tiny=False))
    assert cfg.attention._target_.endswith("FullAttention") and cfg.model.net.dim == 48
