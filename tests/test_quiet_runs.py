"""Quiet, conventional runs: switches honoured, no self-inflicted warnings, a --help line per choice, config tree."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ModelSummary

from hierarchicalvlm.callbacks.summary import RichModelSummary
from hierarchicalvlm.run.pipeline import build, run
from hierarchicalvlm.text import WordTokenizer

from .conftest import CONF


def test_null_progress_bar_and_summary_turn_them_off(make_cfg) -> None:
    _, _, trainer = build(make_cfg("logger=none"))  # TINY sets callbacks.progress_bar/model_summary to null
    assert trainer.progress_bar_callback is None
    assert not [c for c in trainer.callbacks if isinstance(c, ModelSummary)]
    _, _, trainer = build(make_cfg("logger=none", tiny=False))  # the defaults keep both
    assert trainer.progress_bar_callback is not None
    assert [type(c) for c in trainer.callbacks if isinstance(c, ModelSummary)] == [RichModelSummary]


def test_model_summary_does_not_claim_zero_flops(capsys) -> None:
    data = [(" ", ["0"]), ("Name", ["net"]), ("Type", ["Linear"]), ("Params", ["10"]), ("Mode", ["train"]),
            ("FLOPs", ["0"])]
    RichModelSummary.summarize(data, 10, 8, 0.01, {"train": 1, "eval": 0}, 0)
    out = capsys.readouterr().out
    assert "FLOPs" not in out and "Trainable params" in out and "Non-trainable params: 2" in out
    RichModelSummary.summarize(data, 10, 8, 0.01, {"train": 1, "eval": 0}, 2_000_000)  # counted: shown
    assert "Total FLOPs" in capsys.readouterr().out


def test_a_run_warns_about_nothing_of_its_own(make_cfg, tmp_path: Path, caplog) -> None:
    cfg = make_cfg("debug=limit", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
                   "callbacks.throughput.measure_flops=false", "test=false", "logger=none", "extras.print_config=true")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        run(cfg)
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "exists and is not empty" in m], messages
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert not (tmp_path / "checkpoints" / "tokenizer.json").exists()
    assert WordTokenizer.load(tmp_path / "tokenizer" / "tokenizer.json").vocab_size > 3
    tree = (tmp_path / "config_tree.log").read_text()
    assert "attention" in tree and "_target_" in tree and tree.index("data") < tree.index("trainer")


def test_help_has_a_line_per_choice(make_cfg) -> None:
    text = make_cfg().hydra.help.template
    for path in CONF.rglob("*.yaml"):
        group = path.parent.relative_to(CONF).as_posix()
        if path.parent == CONF or group.startswith("hydra"):
            continue
        line = next((ln for ln in text.splitlines() if ln.split() and ln.split()[0] == f"{group}={path.stem}"), None)
        assert line and "no description" not in line, f"--help has no description of {group}={path.stem}"
