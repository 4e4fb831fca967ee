"""A ``ckpt_path`` never runs code, an unreadable one is one clear line, and one of another model is refused
before anything is built (formerly: pickles ran with weights_only=False; raw library errors; a ``full``
checkpoint resumed silently as ``strided``)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch

import hierarchicalvlm.run.pipeline as pipeline
from hierarchicalvlm.run.model_identity import IDENTITY_KEY, check_model_identity, model_identity
from hierarchicalvlm.run.pipeline import run
from hierarchicalvlm.run.checkpoint_io import AtomicCheckpointIO, CheckpointError, read_checkpoint

from ..conftest import compose_config
from .conftest import FAST


class RunsCode:
    """Unpickling this runs a shell command (what a hostile checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def no_build(monkeypatch):
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("built objects despite a bad ckpt_path"))


@pytest.mark.parametrize("mode", [["train=true"], ["train=false", "test=true"]])
def test_a_checkpoint_that_runs_code_is_refused_and_the_code_never_runs(mode, tmp_path: Path, no_build) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCode(marker)}, evil)
    with pytest.raises(CheckpointError, match=f"ckpt_path {evil} is not a readable checkpoint: .*weights-only"):
        run(compose_config([*FAST, *mode, f"ckpt_path={evil}"], tmp_path))
    # Lightning's own load (trainer.fit/test(ckpt_path=...)) goes through our checkpoint IO: weights-only too
    with pytest.raises(Exception, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(evil, weights_only=False)
    assert not marker.exists()


def _write(kind: str, path: Path) -> Path:
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("epoch: 3\nthis is not a checkpoint\n")
    elif kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        torch.save({"state_dict": {"w": torch.ones(1000)}}, path)
        path.write_bytes(path.read_bytes()[:700])
    elif kind == "a tensor":
        torch.save(torch.ones(3), path)
    return path


@pytest.mark.parametrize("kind", ["folder", "empty", "text", "random bytes", "truncated", "a tensor"])
def test_an_unreadable_checkpoint_is_one_line_naming_it(kind: str, tmp_path: Path) -> None:
    path = _write(kind, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"ckpt_path {path} is not a readable checkpoint: ") and "\n" not in message


VARIANTS = {
    "full": ["attention=full"],
    "strided": ["attention=strided"],
    "local_global": ["attention=local_global", "attention.window_size=8"],
    "local": ["attention=local", "attention.window_size=8"],
}


def changed(identity: dict, part: str, **values) -> dict:
    """``identity`` with ``values`` set in its network config (``part="net"``) or attention settings."""
    section = identity["net"] if part == "net" else identity["attention"]["config"]
    new = copy.deepcopy(identity)
    (new["net"] if part == "net" else new["attention"]["config"]).update(values)
    assert all(k in section for k in values)
    return new


@pytest.fixture(scope="module")
def identities(tmp_path_factory) -> dict[str, dict]:
    """What a checkpoint of each variant records (each composed once: composing is the slow part)."""
    out = tmp_path_factory.mktemp("identities")
    found = {name: model_identity(compose_config([*FAST, *overrides], out)) for name, overrides in VARIANTS.items()}
    found["wide"] = changed(found["full"], "net", dim=64)
    found["full, other kernel, activation checkpointing"] = changed(
        changed(found["full"], "attention", kernel="torch"), "net", activation_checkpointing=True)
    return found


MISMATCHES = {
    ("full", "strided"): ["attention: checkpoint 'full'", "this run 'strided'", "StridedAttention"],
    ("local_global", "local"): ["attention.num_global_tokens: checkpoint 4, this run 0"],
    ("full", "wide"): ["model.net.dim: checkpoint 32, this run 64"],
}


@pytest.mark.parametrize("case", sorted(MISMATCHES), ids=" -> ".join)
def test_a_checkpoint_of_another_model_is_refused_naming_both(case, identities) -> None:
    trained, now = case
    with pytest.raises(CheckpointError) as err:
        check_model_identity({IDENTITY_KEY: identities[trained]}, identities[now], "trained.ckpt")
    assert all(text in str(err.value) for text in MISMATCHES[case]), str(err.value)


def test_runtime_only_settings_may_differ(identities) -> None:
    """A kernel choice or activation checkpointing changes speed, not what the weights mean."""
    check_model_identity({IDENTITY_KEY: identities["full"]}, identities["full, other kernel, activation checkpointing"],
                         "trained.ckpt")


def test_resuming_or_evaluating_another_model_stops_before_anything_is_built(tmp_path: Path, identities,
                                                                             no_build) -> None:
    ckpt = tmp_path / "trained.ckpt"
    torch.save({"state_dict": {}, IDENTITY_KEY: identities["full"]}, ckpt)
    for mode in (["train=true"], ["train=false", "test=true"]):
        with pytest.raises(CheckpointError, match=f"ckpt_path {ckpt} holds a different model.*'full'.*'strided'"):
            run(compose_config([*FAST, "attention=strided", *mode, f"ckpt_path={ckpt}"], tmp_path))

