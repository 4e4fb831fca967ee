"""What every data choice hands the model: samples, a collate function, a tokenizer and an answer vocabulary.

A dataset yields :class:`Sample` dicts::

    {"frames": Tensor,        # (T, C, H, W) float pixels in [0, 1]  or  (T, F) float features
     "caption": str,          # may be "" when the data has no captions
     "question": str,         # may be "" when the data has no questions
     "answer": str | None,    # None when the sample has no QA label
     "video_id": str,
     "task": str,             # optional: the question's task family, for per-task accuracy
     "depth": float}          # optional: where the evidence starts (0 = first frame, 1 = last), for per-depth accuracy

and :meth:`VideoTextDataModule.collate` turns a list of them into a :class:`Batch` dict::

    frames        (B, T, C, H, W) or (B, T, F)   zero-padded to the longest video of the batch
    frame_mask    (B, T) bool                    True on real frames
    caption_ids   (B, Lc) long, caption_mask  (B, Lc) bool
    question_ids  (B, Lq) long, question_mask (B, Lq) bool
    answer        (B,) long                      IGNORE_INDEX where a sample has no answer
    video_id      list[str]
    task          (B,) long                      index into ``model_inputs()["tasks"]``, -1 if unknown
                                                 (only when the data module names its tasks)
    depth         (B,) float                     only when every sample has a depth
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NotRequired, Optional, Sequence, TypedDict

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from hierarchicalvlm.text import TextTokenizer, TokenizerFactory, WordTokenizer, tokenizer_from_state

IGNORE_INDEX = -100


class Sample(TypedDict):
    frames: torch.Tensor
    caption: str
    question: str
    answer: Optional[str]
    video_id: str
    task: NotRequired[str]
    depth: NotRequired[float]


Batch = dict[str, Any]


def pad_frames(frames: Sequence[torch.Tensor], bucket: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack videos of different lengths: zero-pad along time and return ``(frames, frame_mask)``.

    The padded length is rounded up to a multiple of ``bucket`` so that a compiled model sees few
    distinct shapes (no recompilation for every new video length)."""
    lengths = [f.shape[0] for f in frames]
    length = -(-max(lengths) // bucket) * bucket
    out = frames[0].new_zeros((len(frames), length, *frames[0].shape[1:]))
    mask = torch.zeros(len(frames), length, dtype=torch.bool)
    for i, (f, n) in enumerate(zip(frames, lengths)):
        out[i, :n] = f
        mask[i, :n] = True
    return out, mask


class VideoTextDataModule(L.LightningDataModule):
    """Base class of the data choices.

    Subclasses implement :meth:`build_splits` (returning train/val/test datasets of
    :class:`Sample`) and :meth:`input_spec`; this class builds the tokenizer and the
    answer vocabulary from the training split, owns the collate function and the loaders,
    and saves/loads the vocabularies so evaluation of a checkpoint sees the same ids.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        max_text_length: int = 32,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        frame_bucket: int = 1,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self.shuffle = shuffle
        if frame_bucket < 1:
            raise ValueError(f"data.frame_bucket must be >= 1, got {frame_bucket}")
        self.frame_bucket = frame_bucket
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_text_length = max_text_length
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.tokenizer: Optional[TextTokenizer] = None
        # builds the tokenizer from the training texts; the pipeline sets it from model.text (text/__init__.py)
        self.tokenizer_factory: TokenizerFactory = WordTokenizer.build
        self.answers: list[str] = []
        self.splits: dict[str, Dataset] = {}

    # --- to implement -------------------------------------------------------------------------
    def build_splits(self) -> dict[str, Dataset]:
        """Return ``{"train": ds, "val": ds, "test": ds}`` of :class:`Sample`."""
        raise NotImplementedError

    def input_spec(self) -> dict[str, Any]:
        """What the model's input adapter needs: ``{"kind": "pixels", "frame_shape": (C, H, W)}``
        or ``{"kind": "features", "feature_dim": F}``, plus ``"max_frames"``."""
        raise NotImplementedError

    def texts_for_vocab(self) -> tuple[list[str], list[str]]:
        """Texts (captions + questions) and answers of the training split, for the vocabularies.

        Subclasses with annotations in memory should override this to avoid decoding any video."""
        train = self.splits["train"]
        samples = [train[i] for i in range(len(train))]
        texts = [s["caption"] for s in samples] + [s["question"] for s in samples]
        return texts, [s["answer"] for s in samples if s["answer"] is not None]

    def task_names(self) -> list[str]:
        """The task families whose QA accuracy is reported separately (none by default)."""
        return []

    # --- shared machinery ---------------------------------------------------------------------
    def setup(self, stage: Optional[str] = None) -> None:
        if self.splits:
            return
        self.splits = self.build_splits()
        if self.tokenizer is None:
            texts, answers = self.texts_for_vocab()
            self.tokenizer = self.tokenizer_factory(texts)
            self.answers = sorted(set(answers))

    def model_inputs(self) -> dict[str, Any]:
        """Everything the model must know about the data to be built.

        ``num_answers`` is at least 2 so caption-only data still builds (its QA loss is ignored)."""
        self.setup()
        assert self.tokenizer is not None
        return {**self.input_spec(), "vocab_size": self.tokenizer.vocab_size, "num_answers": max(2, len(self.answers)),
                "tasks": self.task_names()}

    def collate(self, samples: list[Sample]) -> Batch:
        assert self.tokenizer is not None, "call setup() before building loaders"
        frames, frame_mask = pad_frames([s["frames"] for s in samples], self.frame_bucket)
        caption_ids, caption_mask = self.tokenizer.batch_encode([s["caption"] for s in samples], self.max_text_length)
        question_ids, question_mask = self.tokenizer.batch_encode([s["question"] for s in samples], self.max_text_length)
        answer_index = {a: i for i, a in enumerate(self.answers)}
        answer = torch.tensor(
            [answer_index.get(s["answer"], IGNORE_INDEX) if s["answer"] is not None else IGNORE_INDEX for s in samples],
            dtype=torch.long,
        )
        batch = {
            "frames": frames,
            "frame_mask": frame_mask,
            "caption_ids": caption_ids,
            "caption_mask": caption_mask,
            "question_ids": question_ids,
            "question_mask": question_mask,
            "answer": answer,
            "video_id": [s["video_id"] for s in samples],
        }
        if all("depth" in s for s in samples):
            batch["depth"] = torch.tensor([float(s["depth"]) for s in samples], dtype=torch.float32)
        tasks = self.task_names()
        if tasks:
            index = {t: i for i, t in enumerate(tasks)}
            batch["task"] = torch.tensor([index.get(s.get("task"), -1) for s in samples], dtype=torch.long)
        return batch

    def _world(self) -> tuple[int, int]:
        """(world size, global rank) of the attached trainer; (1, 0) without one."""
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _loader(self, split: str) -> DataLoader:
        self.setup()
        training = split == "train"
        world_size, rank = self._world()
        sampler = None
        if training and not self.shuffle and world_size > 1:
            # Lightning would put a *shuffling* DistributedSampler under every training loader. A sequential one
            # gives rank r samples r, r + W, ...: global batch t is then samples [t·B·W, (t+1)·B·W), one
            # process's batch t at batch size B·W, so one GPU and DDP train on the same batches.
            sampler = DistributedSampler(self.splits[split], num_replicas=world_size, rank=rank, shuffle=False)
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=training and self.shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=training and len(self.splits[split]) > self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    # --- vocabularies travel with checkpoints -------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"vocab": getattr(self.tokenizer, "vocab", None), "answers": self.answers,
                "tokenizer": self.tokenizer.state() if self.tokenizer else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("vocab") or state.get("tokenizer"):
            self.tokenizer = tokenizer_from_state(state)
            self.answers = list(state["answers"])

    def save_vocab(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and ``answers.txt`` next to the checkpoints."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        assert self.tokenizer is not None
        self.tokenizer.save(directory / "tokenizer.json")
        (directory / "answers.txt").write_text("\n".join(self.answers) + "\n")
