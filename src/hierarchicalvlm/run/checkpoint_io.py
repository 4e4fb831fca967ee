"""Checkpoint files: written so a kill cannot corrupt them, read so a file cannot run code.

* :class:`AtomicCheckpointIO` writes a temporary file beside the target, then renames it, and loads with
  ``weights_only=True`` whatever Lightning asks for.
* :func:`read_checkpoint` is the one place a checkpoint named by the user (``ckpt_path``) is first opened: a
  weights-only load (tensors, numbers, strings and plain containers; no pickled code), and any failure (random
  bytes, text, an empty file, a folder, a pickle that names a function) becomes one line,
  ``ckpt_path X is not a readable checkpoint: ...``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from hierarchicalvlm.run.config_checks import ConfigError


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used: unreadable, unsafe, or trained with a different model."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    for line in text.splitlines():
        if "Unsupported global" in line:  # the useful line of torch's weights-only refusal
            return line.strip().split(" was not an allowed global", 1)[0]
    return text.splitlines()[0][:300] if text else type(err).__name__


def read_checkpoint(path: _PATH, field: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint at ``path``, loaded on the CPU with ``weights_only=True`` (tensors memory-mapped where the
    file allows it, so a large checkpoint costs little to inspect).

    Raises :class:`CheckpointError` naming ``field`` and ``path`` when it is missing, a folder, not a
    ``torch.save`` file, holds anything a weights-only load refuses, or is not a Lightning checkpoint.
    """
    path = Path(path)

    def unreadable(reason: str) -> CheckpointError:
        return CheckpointError(f"{field} {path} is not a readable checkpoint: {reason}")

    if path.is_dir():
        raise unreadable("it is a folder; point it at a .ckpt file, e.g. <run folder>/checkpoints/last.ckpt")
    if not path.is_file():
        raise unreadable("no such file")
    if path.stat().st_size == 0:
        raise unreadable("the file is empty (a save that never finished?)")
    try:
        mmap = zipfile.is_zipfile(path)  # torch.save's format since 1.6; older files cannot be memory-mapped
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "weights_only" in str(err).lower():
            raise unreadable(
                f"it holds objects a weights-only load refuses ({_first_line(err)}); a checkpoint can run code "
                "when unpickled, so only tensors and plain containers are accepted. If you wrote the file yourself "
                "with an older version, rewrite it with `python -m hierarchicalvlm.run.checkpoint_io "
                "--trust-and-upgrade IN OUT`") from None
        raise unreadable(f"not a torch checkpoint ({_first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - the unpickler fails in many ways on bytes that are not a checkpoint
        raise unreadable(f"not a torch checkpoint or truncated ({type(err).__name__}: {_first_line(err)})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        kind = f"a {type(checkpoint).__name__}" if not isinstance(checkpoint, dict) else "a dict without 'state_dict'"
        raise unreadable(f"it holds {kind}, not a Lightning checkpoint")
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Like Lightning's default, but the target path only ever holds a complete checkpoint, and loading never
    unpickles code.

    ``os.replace`` within one directory is atomic on POSIX, so a process killed mid-save leaves
    the previous ``last.ckpt`` intact (plus, at worst, a stray ``*.tmp`` file).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Optional[Any] = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self, path: _PATH, map_location: Optional[Any] = None,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        """Lightning's load, always weights-only (a caller asking for ``weights_only=False`` is overruled)."""
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def upgrade_checkpoint(source: _PATH, target: _PATH) -> None:
    """Rewrite a checkpoint of an older version (omegaconf objects in ``hyper_parameters``) with plain containers.

    This unpickles ``source`` with ``weights_only=False``, which runs any code the file holds: only for files you
    wrote yourself.
    """
    from omegaconf import Container, OmegaConf

    checkpoint = torch.load(source, map_location="cpu", weights_only=False)

    def plain(value: Any) -> Any:
        if isinstance(value, Container):
            return OmegaConf.to_container(value, resolve=True)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    checkpoint["hyper_parameters"] = plain(checkpoint.get("hyper_parameters", {}))
    AtomicCheckpointIO().save_checkpoint(checkpoint, target)
    read_checkpoint(target)  # the result must now pass the safe load


if __name__ == "__main__":  # python -m hierarchicalvlm.run.checkpoint_io --trust-and-upgrade IN OUT
    import argparse

    parser = argparse.ArgumentParser(description=upgrade_checkpoint.__doc__)
    parser.add_argument("--trust-and-upgrade", nargs=2, metavar=("IN", "OUT"), required=True,
                        help="unpickle IN (runs its code: only your own files) and write OUT with plain containers")
    source, target = parser.parse_args().trust_and_upgrade
    upgrade_checkpoint(source, target)
    print(f"wrote {target}")
