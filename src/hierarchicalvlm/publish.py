"""Publish a trained model in the Hugging Face Hub mixin's layout, and load it back.

An exported folder holds::

    model.safetensors   the network's weights (no optimizer state)
    config.json         everything needed to rebuild it: input spec, attention config, sizes, encoder choices,
                        answer vocabulary, tokenizer kind
    tokenizer.json      the tokenizer (plus tokenizer_config.json… for a pretrained one)
    README.md           a model card: what it is, how it was trained, its metrics, how to load it

``PublishedVLM.from_pretrained(folder)`` (huggingface_hub's ``PyTorchModelHubMixin``) rebuilds the network;
:func:`load_exported` also returns its tokenizer and answers. Nothing is pushed: upload the folder yourself with
``huggingface-cli upload <user>/<repo> <folder>`` or ``PublishedVLM.push_to_hub``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Optional

import torch
from huggingface_hub import PyTorchModelHubMixin
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from hierarchicalvlm.models.config import NetConfig
from hierarchicalvlm.models.hierarchical_vlm import HierarchicalVLM, VLMOutput
from hierarchicalvlm.text import PretrainedTokenizer, TextTokenizer, WordTokenizer, tokenizer_from_state

WEIGHTS = "model.safetensors"


class PublishedVLM(nn.Module, PyTorchModelHubMixin, library_name="hierarchicalvlm",
                   tags=["video-language", "video-question-answering", "long-context"], license="apache-2.0"):
    """The network of a trained :class:`~hierarchicalvlm.models.HierarchicalVLMModule`, rebuilt from plain JSON
    (its init arguments are ``config.json``), without the training machinery."""

    def __init__(self, inputs: dict[str, Any], attention: dict[str, Any], net: dict[str, Any],
                 visual: Optional[dict[str, Any]] = None, text: Optional[dict[str, Any]] = None,
                 answers: Optional[list[str]] = None, tokenizer: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        self.answers = list(answers or [])
        self.net = HierarchicalVLM(inputs, instantiate(attention), NetConfig.from_dict(net), visual=visual, text=text)

    def forward(self, batch: dict[str, Any]) -> VLMOutput:
        batch = batch if "padded" in batch else {**batch, "padded": not bool(batch["frame_mask"].all())}
        return self.net(batch)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else copy.deepcopy(value)


def _no_download(choice: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """A pretrained choice rebuilt without fetching weights (they are in model.safetensors)."""
    if choice and choice.get("kind") == "hf":
        return {**choice, "pretrained": False}
    return choice


def run_attention_config(ckpt_path: Path) -> dict[str, Any]:
    """The attention config of the run a checkpoint belongs to: the checkpoint's hyper-parameters when they hold
    it, else ``<run>/.hydra/config.yaml`` (checkpoints live in ``<run>/checkpoints/``)."""
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    saved = (checkpoint.get("hyper_parameters") or {}).get("attention")
    if isinstance(saved, (dict, DictConfig)) and "_target_" in saved:
        return _plain(saved)
    run_config = ckpt_path.resolve().parent.parent / ".hydra" / "config.yaml"
    if not run_config.exists():
        raise FileNotFoundError(f"{ckpt_path}: the checkpoint does not hold its attention config and {run_config} "
                                "does not exist; pass --config <the run's .hydra/config.yaml>")
    return _plain(OmegaConf.load(run_config).attention)


def export_model(ckpt_path: str | Path, out_dir: str | Path, attention: Optional[dict[str, Any]] = None,
                 extra_card: str = "") -> Path:
    """Write ``out_dir`` (weights, config, tokenizer, model card) from a training checkpoint; returns ``out_dir``."""
    ckpt_path, out_dir = Path(ckpt_path), Path(out_dir)
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    hparams = checkpoint.get("hyper_parameters") or {}
    if "net" not in hparams or "inputs" not in hparams:
        raise ValueError(f"{ckpt_path}: not a HierarchicalVLMModule checkpoint (no net/inputs hyper-parameters)")
    data_state = next((v for k, v in checkpoint.items() if isinstance(v, dict) and "answers" in v), None)
    if data_state is None:
        raise ValueError(f"{ckpt_path}: holds no data-module state (tokenizer and answers); was it saved by train.py?")
    tokenizer = tokenizer_from_state(data_state)
    config = {
        "inputs": _plain(hparams["inputs"]),
        "attention": attention if attention is not None else run_attention_config(ckpt_path),
        "net": _plain(hparams["net"]),
        "visual": _no_download(_plain(hparams.get("visual"))),
        "text": _no_download(_plain(hparams.get("text"))),
        "answers": list(data_state["answers"]),
        "tokenizer": {"kind": "word" if isinstance(tokenizer, WordTokenizer) else "pretrained"},
    }
    model = PublishedVLM(**config)
    weights = {k[len("net."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    weights = {k.replace("_orig_mod.", ""): v for k, v in weights.items()}  # a compiled run's keys
    model.net.load_state_dict(weights, strict=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(out_dir / "tokenizer.json")  # a pretrained one writes its own files (tokenizer_config.json…)
    (out_dir / "README.md").write_text(model_card(config, checkpoint, model, ckpt_path, extra_card))
    model.save_pretrained(out_dir, config=config)
    return out_dir


def load_exported(folder: str | Path) -> tuple[PublishedVLM, TextTokenizer, list[str]]:
    """``(model in eval mode, tokenizer, answers)`` of an exported folder."""
    folder = Path(folder)
    model = PublishedVLM.from_pretrained(str(folder), strict=True)
    config = json.loads((folder / "config.json").read_text())
    saved = config.get("tokenizer") or {"kind": "word"}
    if saved["kind"] == "word":
        tokenizer: TextTokenizer = WordTokenizer.load(folder / "tokenizer.json")
    else:
        tokenizer = PretrainedTokenizer(str(folder))
    return model.eval(), tokenizer, list(config["answers"])


def model_card(config: dict[str, Any], checkpoint: dict[str, Any], model: nn.Module, ckpt_path: Path,
               extra: str = "") -> str:
    """A Hub model card (YAML front matter + Markdown) describing an exported model."""
    params = sum(p.numel() for p in model.parameters())
    attention = config["attention"].get("_target_", "?").rsplit(".", 1)[-1]
    net, inputs, answers = config["net"], config["inputs"], config["answers"]
    scores = [f"- {k}: {float(v):.4f}" for cb in (checkpoint.get("callbacks") or {}).values() if isinstance(cb, dict)
              for k, v in (("best " + str(cb.get("monitor")), cb.get("best_model_score")),)
              if cb.get("monitor") and v is not None]
    visual = (config.get("visual") or {}).get("name") or "patches learned from scratch"
    text = (config.get("text") or {}).get("name") or "a word-level transformer learned from scratch"
    lines = [
        "---", "library_name: hierarchicalvlm", "license: apache-2.0",
        "tags:", "- video-language", "- video-question-answering", "- long-context", "---", "",
        "# HierarchicalVLM", "",
        f"A hierarchical video-language model ({params / 1e6:.2f} M parameters) whose long-range level uses "
        f"**{attention}** attention. Frames -> tokens ({visual}) -> level 1 within each frame -> level 2 over the "
        f"whole video -> memory level; text through {text}.", "",
        f"- width {net.get('dim')}, {net.get('num_heads')} heads, level-1 depth {net.get('level1_depth')}, "
        f"level-2 depth {net.get('level2_depth')}, memory {'on' if net.get('memory_enabled') else 'off'}",
        f"- inputs: {inputs.get('kind')} {inputs.get('frame_shape') or inputs.get('feature_dim')}",
        f"- {len(answers)} answers: {', '.join(answers[:12])}{' …' if len(answers) > 12 else ''}",
        f"- trained for {checkpoint.get('epoch', '?')} epoch(s), {checkpoint.get('global_step', '?')} steps "
        f"(checkpoint {ckpt_path.name})",
        *scores, "",
        "## Use", "", "```python",
        "from hierarchicalvlm.publish import load_exported",
        "model, tokenizer, answers = load_exported('path/to/this/folder')",
        "ids, mask = tokenizer.batch_encode(['what colour flashed first?'])",
        "```", "",
        "Files: `model.safetensors` (weights), `config.json` (rebuild arguments), `tokenizer.json`, this card.",
    ]
    return "\n".join(lines) + ("\n\n" + extra if extra else "") + "\n"
