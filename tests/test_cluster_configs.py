"""The cluster configs: SLURM launcher with one task per GPU, and time-based checkpoints for preemption."""

from __future__ import annotations

from datetime import timedelta

from hydra.utils import instantiate


def test_slurm_ddp_runs_one_task_per_gpu_and_requeues(make_cfg) -> None:
    cfg = make_cfg("hydra/launcher=slurm_ddp", "hydra.launcher.nodes=2", "hydra.launcher.gpus_per_node=4",
                   "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node) == (2, 4, 4)
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s > 0
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.num_nodes) == ("ddp", 4, 2)


def test_preemptible_callbacks_also_save_last_ckpt_on_a_timer(make_cfg) -> None:
    cfg = make_cfg("callbacks=preemptible")
    timed = instantiate(cfg.callbacks.timed_last_checkpoint)
    epochs = instantiate(cfg.callbacks.last_checkpoint)
    assert timed._train_time_interval == timedelta(minutes=15) and timed._every_n_epochs == 0
    assert epochs._every_n_epochs == 1
    assert (timed.dirpath, timed.filename) == (epochs.dirpath, epochs.filename) == (epochs.dirpath, "last")
    assert timed.state_key != epochs.state_key  # Lightning keeps both


def test_a_preemptible_run_writes_last_ckpt(make_cfg, tmp_path) -> None:
    from hierarchicalvlm.run.pipeline import run

    cfg = make_cfg("callbacks=preemptible", "trainer.max_epochs=1", "test=false")
    run(cfg)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
