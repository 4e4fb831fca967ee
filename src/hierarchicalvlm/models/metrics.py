"""Video<->text retrieval recall@k over a whole evaluation epoch (torchmetrics, so it syncs across GPUs)."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class CrossModalRecall(Metric):
    """Recall@k of text->video and video->text retrieval among all pairs seen in the epoch.

    ``update(video, text)`` takes matched (B, E) embeddings (row i of each is a pair);
    ``compute()`` returns ``{"t2v_r1": ..., "t2v_r5": ..., "v2t_r1": ..., "v2t_r5": ...}``.
    """

    full_state_update = False

    def __init__(self, ks: tuple[int, ...] = (1, 5)) -> None:
        super().__init__()
        self.ks = ks
        self.add_state("video", default=[], dist_reduce_fx="cat")
        self.add_state("text", default=[], dist_reduce_fx="cat")

    def update(self, video: torch.Tensor, text: torch.Tensor) -> None:
        self.video.append(video.detach().float())
        self.text.append(text.detach().float())

    def compute(self) -> dict[str, torch.Tensor]:
        video, text = dim_zero_cat(self.video), dim_zero_cat(self.text)
        sims = text @ video.t()  # (texts, videos)
        out = {}
        for name, s in (("t2v", sims), ("v2t", sims.t())):
            rank = retrieval_rank(s)
            for k in self.ks:
                out[f"{name}_r{k}"] = (rank < k).float().mean()
        return out


def retrieval_rank(scores: torch.Tensor) -> torch.Tensor:
    """Rank of the matching item (the diagonal) in each row of ``scores`` (queries, items): the number of items
    scored strictly higher. Non-finite scores never help (a diverged model must not look perfect): a NaN item
    counts as scored higher, and a row whose matching score is NaN or infinite gets the largest rank, a miss at every k."""
    rows = torch.arange(scores.shape[0], device=scores.device)
    matching = scores[rows, rows]
    higher = (scores > matching[:, None]) | scores.isnan()
    higher[rows, rows] = False
    rank = higher.sum(dim=1)
    return torch.where(torch.isfinite(matching), rank, torch.full_like(rank, torch.iinfo(rank.dtype).max))
