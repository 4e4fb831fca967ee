"""Export a trained model (safetensors + config + tokenizer + model card) and load it back: same outputs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from hierarchicalvlm.run.pipeline import build, run
from hierarchicalvlm.publish import load_exported

from .data.helpers import load_script


def test_export_and_reload_give_equal_outputs(make_cfg, tmp_path: Path) -> None:
    overrides = ["debug=limit", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
                 "callbacks.throughput.measure_flops=false", "test=false", "logger=none",
                 "attention=performer", "model.net.level2_depth=1"]  # a non-default attention travels along
    cfg = make_cfg(*overrides)
    run(cfg)
    (tmp_path / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")  # what a train.py run leaves beside checkpoints/
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    out = tmp_path / "exported"
    assert load_script("export_model").main([str(ckpt), str(out)]) == 0
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["attention"] == OmegaConf.to_container(cfg.attention, resolve=True)
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: hierarchicalvlm") and "load_exported" in card

    model, tokenizer, answers = load_exported(out)
    datamodule, trained, _ = build(make_cfg(*overrides, f"ckpt_path={ckpt}"))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    trained.load_state_dict(state)
    trained.eval()
    batch = next(iter(datamodule.val_dataloader()))
    # the exported tokenizer encodes like the run's
    ids, mask = tokenizer.batch_encode(["what colour flashed first?"], 32)
    assert torch.equal(ids, datamodule.tokenizer.batch_encode(["what colour flashed first?"], 32)[0])
    assert answers == datamodule.answers
    with torch.no_grad():
        torch.manual_seed(0)
        expected = trained(batch)
        torch.manual_seed(0)
        got = model(batch)
    torch.testing.assert_close(got.qa_logits, expected.qa_logits)
    torch.testing.assert_close(got.video_embedding, expected.video_embedding)
