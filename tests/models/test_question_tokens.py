"""model.net.question_tokens: the question's word tokens join level 2 after the video and pass through the
configured attention, so what they can see of the video is the mechanism's reach."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from hierarchicalvlm.attention import FullAttention, LocalGlobalAttention
from hierarchicalvlm.models import HierarchicalVLM, NetConfig

from ..conftest import compose_config

INPUTS = {"kind": "pixels", "frame_shape": (3, 16, 16), "vocab_size": 40, "num_answers": 5}
FRAMES = 12  # 4 tokens a frame (patch 8): 48 video tokens


def network(tmp_path: Path, attention, question_tokens: bool = True) -> HierarchicalVLM:
    net = dict(compose_config(["model.net.dim=32", "model.net.num_heads=2", "model.net.memory_enabled=false",
                               f"model.net.question_tokens={str(question_tokens).lower()}"], tmp_path).model.net)
    torch.manual_seed(0)
    return HierarchicalVLM(INPUTS, attention, NetConfig.from_dict(net)).eval()


def batch(question_ids: list[int]) -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.tensor([question_ids + [0] * (8 - len(question_ids))])
    return {"frames": torch.rand(1, FRAMES, 3, 16, 16, generator=g), "frame_mask": torch.ones(1, FRAMES, dtype=torch.bool),
            "question_ids": ids, "question_mask": ids != 0,
            "caption_ids": torch.tensor([[1, 5, 6, 0]]), "caption_mask": torch.tensor([[True, True, True, False]])}


def video_tokens(model: HierarchicalVLM, data: dict) -> torch.Tensor:
    question, words = model.text(data["question_ids"], data["question_mask"], tokens=True)
    return model.video(data["frames"], data["frame_mask"], question, words=words, word_mask=data["question_mask"]).tokens


def test_words_reach_the_video_through_the_configured_attention(tmp_path: Path) -> None:
    one, other = batch([1, 7, 8, 9]), batch([1, 9, 8, 7])  # the same words, the two named ones swapped
    full = network(tmp_path, functools.partial(FullAttention))
    with torch.no_grad():
        a, b = video_tokens(full, one), video_tokens(full, other)
    assert a.shape == (1, FRAMES * 4, 32)  # only the video's tokens come out
    assert not torch.allclose(a[:, :4], b[:, :4])  # full attention: even the first frame reads the words

    # a sliding window of 8 tokens (each side 4; two layers: 8 positions): the words, after the video, reach only its end
    local = network(tmp_path, functools.partial(LocalGlobalAttention, window_size=8, num_global_tokens=0))
    with torch.no_grad():
        a, b = video_tokens(local, one), video_tokens(local, other)
    assert torch.equal(a[:, :32], b[:, :32])  # frames 0-7: out of the window's reach of the words
    assert not torch.allclose(a[:, -4:], b[:, -4:])  # the last frame reads them


def test_training_step_reaches_the_word_path_and_the_default_leaves_it_out(tmp_path: Path) -> None:
    model = network(tmp_path, functools.partial(FullAttention)).train()
    out = model(batch([1, 7, 8, 9]))
    (out.qa_logits.sum() + out.video_embedding.sum()).backward()
    assert model.video.words_in.weight.grad is not None and model.video.words_in.weight.grad.abs().sum() > 0
    plain = network(tmp_path, functools.partial(FullAttention), question_tokens=False)
    assert plain.video.words_in is None
    plain(batch([1, 7, 8, 9]))  # the default path is unchanged: no word tokens


def test_old_checkpoints_read_as_off_and_bad_values_are_named(tmp_path: Path) -> None:
    net = dict(compose_config([], tmp_path).model.net)
    older = {k: v for k, v in net.items() if k != "question_tokens"}
    assert NetConfig.from_dict(older).question_tokens is False
    with pytest.raises(ValueError, match=r"model\.net\.question_tokens must be true or false"):
        NetConfig.from_dict({**net, "question_tokens": "yes"})
