"""The network's shape lives in one place: ``model.net`` in conf/model/hierarchical.yaml, read into NetConfig."""

from __future__ import annotations

import dataclasses
import functools
import typing
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from hierarchicalvlm.attention import FullAttention
from hierarchicalvlm.models import HierarchicalVLMModule, NetConfig

from ..conftest import CONF, compose_config

INPUTS = {"kind": "pixels", "frame_shape": (3, 16, 16), "vocab_size": 40, "num_answers": 5}


def module_kwargs(net: dict) -> dict:
    return dict(net=net, inputs=INPUTS, attention=functools.partial(FullAttention),
                optimizer={"lr": 1e-3, "weight_decay": 0.0}, scheduler={"warmup_steps": 1}, loss={"qa_weight": 1.0,
                "contrastive_weight": 0.5})


def test_the_yaml_names_every_field_and_nothing_else_with_the_declared_types(tmp_path: Path) -> None:
    yaml_keys = set(OmegaConf.load(CONF / "model" / "hierarchical.yaml").net)
    assert yaml_keys == {f.name for f in dataclasses.fields(NetConfig)}
    # no field has a code default that could disagree with the YAML
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(NetConfig))
    net = compose_config([], tmp_path).model.net
    config = NetConfig.from_dict(net)
    hints = typing.get_type_hints(NetConfig)
    for name, value in dataclasses.asdict(config).items():
        assert value == net[name]
        assert isinstance(value, hints[name]), f"model.net.{name}={value!r} is not a {hints[name].__name__}"
    assert config.patch_size == 8  # the YAML's value; the old code default (4) is gone


def test_an_unknown_key_is_an_error_naming_the_field(tmp_path: Path) -> None:
    net = {**compose_config([], tmp_path).model.net, "patchsize": 8}
    with pytest.raises(ValueError, match=r"model\.net\.patchsize: not a network setting.*patch_size"):
        NetConfig.from_dict(net)
    with pytest.raises(ValueError, match=r"model\.net\.patchsize"):  # the LightningModule builds the config
        HierarchicalVLMModule(**module_kwargs(net))


def test_a_missing_key_is_an_error_naming_the_field(tmp_path: Path) -> None:
    net = {k: v for k, v in compose_config([], tmp_path).model.net.items() if k != "clip_frames"}
    with pytest.raises(ValueError, match=r"model\.net\.clip_frames missing"):
        NetConfig.from_dict(net)


def test_hparams_keep_net_a_plain_dict_and_rebuild_the_same_network(tmp_path: Path) -> None:
    net = OmegaConf.to_container(compose_config(["model.net.dim=16", "model.net.num_heads=2"], tmp_path).model.net,
                                 resolve=True)
    torch.manual_seed(0)
    module = HierarchicalVLMModule(**module_kwargs(net))
    assert module.hparams["net"] == net and isinstance(module.hparams["net"], dict)
    assert module.net.config == NetConfig.from_dict(net)
    # what load_from_checkpoint does: the saved hparams (attention is passed again) rebuild the network
    hparams = {k: v for k, v in module.hparams.items()}
    rebuilt = HierarchicalVLMModule(**{**hparams, "attention": functools.partial(FullAttention)})
    rebuilt.load_state_dict(module.state_dict(), strict=True)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in module.state_dict().items()}


def test_checkpoints_from_before_video_summary_load_as_the_token_summary(tmp_path: Path) -> None:
    net = {k: v for k, v in compose_config([], tmp_path).model.net.items() if k != "video_summary"}
    assert NetConfig.from_dict(net).video_summary == "token"
    with pytest.raises(ValueError, match=r"model\.net\.video_summary must be one of token, mean"):
        NetConfig.from_dict({**net, "video_summary": "pooled"})


def test_time_scale_sets_the_initial_weight_of_the_frame_time_signal(tmp_path: Path) -> None:
    net = OmegaConf.to_container(compose_config(["model.net.dim=16", "model.net.num_heads=2",
                                                 "model.net.time_scale=1.0"], tmp_path).model.net, resolve=True)
    assert HierarchicalVLMModule(**module_kwargs(net)).net.video.time_scale.item() == 1.0
    older = {k: v for k, v in net.items() if k != "time_scale"}  # a checkpoint from before the setting
    assert NetConfig.from_dict(older).time_scale == 0.1
    for bad in (-0.5, "loud", float("nan"), True):
        with pytest.raises(ValueError, match=r"model\.net\.time_scale must be a finite number >= 0"):
            NetConfig.from_dict({**net, "time_scale": bad})


def test_the_mean_video_summary_averages_the_real_level2_tokens(tmp_path: Path) -> None:
    net = OmegaConf.to_container(compose_config(["model.net.dim=16", "model.net.num_heads=2",
                                                 "model.net.video_summary=mean"], tmp_path).model.net, resolve=True)
    torch.manual_seed(0)
    encoder = HierarchicalVLMModule(**module_kwargs(net)).net.video.eval()
    frames = torch.rand(2, 6, 3, 16, 16)
    frame_mask = torch.ones(2, 6, dtype=torch.bool)
    frame_mask[1, 4:] = False  # the second video has two padded frames
    encoded = encoder(frames, frame_mask, torch.zeros(2, 16))
    real = encoded.mask.unsqueeze(-1).float()
    torch.testing.assert_close(encoded.video, (encoded.tokens * real).sum(1) / real.sum(1))
    token_net = {**net, "video_summary": "token"}
    torch.manual_seed(0)
    token_encoder = HierarchicalVLMModule(**module_kwargs(token_net)).net.video.eval()
    token_encoded = token_encoder(frames, frame_mask, torch.zeros(2, 16))
    torch.testing.assert_close(token_encoded.qa, encoded.qa)  # only the contrastive summary changes
    assert not torch.allclose(token_encoded.video, encoded.video)
