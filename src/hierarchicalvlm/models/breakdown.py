"""QA accuracy broken down by task family and by evidence depth (torchmetrics, so it syncs across GPUs).

A long-range benchmark is read per family ("does it count?") and per depth ("how far back can it look?"):
the depth of a sample is where its evidence starts, 0 for the first frame and 1 for the last (the
question is asked after the video, so depth 0 is the farthest). Depths fall into ``num_buckets`` equal
buckets; bucket ``k`` holds depths in ``[k/num_buckets, (k+1)/num_buckets)``, the last one includes 1.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


def depth_buckets(depth: torch.Tensor, num_buckets: int) -> torch.Tensor:
    """The bucket index (0 .. num_buckets - 1) of each depth in [0, 1]."""
    return (depth.float() * num_buckets).long().clamp(0, num_buckets - 1)


def bucket_label(bucket: int, num_buckets: int) -> str:
    """``depth_00`` .. : the logged name of a bucket (zero-padded so names sort in depth order)."""
    return f"depth_{bucket:0{len(str(num_buckets - 1))}d}"


class AccuracyBreakdown(Metric):
    """Correct and total answers in a (families x depth buckets) grid.

    ``update(logits, answer, family, depth)``: ``family`` (B,) long indices (-1: unknown, not counted in the
    family rows but counted in the depth figures), ``depth`` (B,) floats in [0, 1] or None; samples whose
    answer equals ``ignore_index`` are not counted. ``compute()`` returns ``num_samples`` (answers counted)
    and accuracies keyed ``<family>``, ``depth_<k>`` and ``<family>/depth_<k>``, only for cells that saw a
    sample (the same keys on every rank, since the counts are synced first).
    A non-finite logit row counts as a wrong answer (never as a lucky argmax).
    """

    full_state_update = False

    def __init__(self, families: list[str], num_buckets: int = 10, ignore_index: int = -100) -> None:
        super().__init__()
        if num_buckets < 1:
            raise ValueError(f"model.depth_buckets must be >= 1, got {num_buckets}")
        self.families, self.num_buckets, self.ignore_index = list(families), num_buckets, ignore_index
        rows = max(1, len(self.families)) + 1  # last row: samples of no known family
        self.add_state("correct", default=torch.zeros(rows, num_buckets), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(rows, num_buckets), dist_reduce_fx="sum")
        self.add_state("has_depth", default=torch.zeros(()), dist_reduce_fx="max")

    def update(self, logits: torch.Tensor, answer: torch.Tensor, family: torch.Tensor | None = None,
               depth: torch.Tensor | None = None) -> None:
        keep = answer != self.ignore_index
        hit = (logits.argmax(-1) == answer) & torch.isfinite(logits).all(-1)
        rows = self.correct.shape[0]
        row = family.long().clone() if family is not None else torch.full_like(answer, -1)
        row[(row < 0) | (row >= rows - 1)] = rows - 1
        if depth is not None:
            col = depth_buckets(depth.to(answer.device), self.num_buckets)
            self.has_depth.fill_(1.0)
        else:
            col = torch.zeros_like(answer)
        flat = (row * self.num_buckets + col)[keep]
        size = rows * self.num_buckets
        self.total += torch.bincount(flat, minlength=size).view(rows, -1).to(self.total.dtype)
        self.correct += torch.bincount(flat, weights=hit[keep].float(), minlength=size).view(rows, -1).to(self.correct.dtype)

    def compute(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"num_samples": self.total.sum()}

        def add(name: str, correct: torch.Tensor, total: torch.Tensor) -> None:
            if total > 0:
                out[name] = correct / total

        for i, family in enumerate(self.families):
            add(family, self.correct[i].sum(), self.total[i].sum())
        if self.has_depth > 0:
            for k in range(self.num_buckets):
                label = bucket_label(k, self.num_buckets)
                add(label, self.correct[:, k].sum(), self.total[:, k].sum())
                for i, family in enumerate(self.families):
                    add(f"{family}/{label}", self.correct[i, k], self.total[i, k])
        return out
