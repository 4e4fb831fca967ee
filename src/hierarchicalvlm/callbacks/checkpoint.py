"""``ModelCheckpoint`` that keeps its best model across a resume into a new run folder, and never keeps a
non-finite score.

Lightning's ``ModelCheckpoint`` forgets its best score when the run resumes into another folder (the README's
``ckpt_path=<old run>/checkpoints/last.ckpt`` does exactly that): the first epoch after the resume became
"best" whatever its score, and the final test evaluated a worse model. :class:`BestCheckpoint` copies the old
folder's top-k files into the new one and keeps their scores, so the comparison goes on as if the run had never
stopped; the old folder is left untouched.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) with the two guarantees of the module docstring."""

    @property
    def state_key(self) -> str:
        # ModelCheckpoint's key, so checkpoints written with the plain class restore into this one and back
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def _save_topk_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        current = monitor_candidates.get(self.monitor) if self.monitor else None
        if current is not None and not bool(torch.isfinite(torch.as_tensor(current)).all()):
            log.warning("%s is %s at step %d: no checkpoint kept for it (a non-finite score is never best)",
                        self.monitor, float(current), trainer.global_step)
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath")
        if self.monitor and old_dir and self.dirpath and Path(old_dir).absolute() != Path(self.dirpath).absolute():
            state_dict = self._adopt_best(state_dict)
        super().load_state_dict(state_dict)

    def _adopt_best(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        """``state_dict`` of a run in another folder, its top-k checkpoints copied into this one (rank 0 copies)."""
        assert self.dirpath is not None
        target_dir = Path(self.dirpath)
        moved: dict[str, str] = {}
        for old_path in state_dict.get("best_k_models", {}):
            source = Path(old_path)
            target = target_dir / source.name
            if not source.is_file():
                log.warning("best checkpoint %s of the resumed run is gone: its score stays the one to beat", source)
                continue
            if rank_zero_only.rank == 0 and not target.exists():
                target_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            moved[old_path] = str(target)
        if moved:
            log.info("resumed into %s: carried over the best checkpoint(s) %s", target_dir, ", ".join(moved.values()))
        remap = lambda path: moved.get(path, path)  # noqa: E731
        return {
            **state_dict,
            "dirpath": self.dirpath,
            "best_k_models": {remap(p): score for p, score in state_dict.get("best_k_models", {}).items()},
            "best_model_path": remap(state_dict.get("best_model_path", "")),
            "kth_best_model_path": remap(state_dict.get("kth_best_model_path", "")),
            "last_model_path": "",
        }
