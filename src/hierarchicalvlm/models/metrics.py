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
        target = torch.arange(len(text), device=sims.device)
        out = {}
        for name, s in (("t2v", sims), ("v2t", sims.t())):
            # rank of the matching item = number of items scored strictly higher
            rank = (s > s[target, target][:, None]).sum(dim=1)
            for k in self.ks:
                out[f"{name}_r{k}"] = (rank < k).float().mean()
        return out
