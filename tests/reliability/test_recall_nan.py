"""Retrieval recall counts non-finite similarity scores as misses, never as hits (formerly: NaN recall was 1.0)."""

from __future__ import annotations

import torch

from hierarchicalvlm.models.metrics import CrossModalRecall, retrieval_rank


def test_nan_embeddings_give_zero_recall() -> None:
    recall = CrossModalRecall()
    recall.update(torch.full((4, 8), float("nan")), torch.randn(4, 8))
    assert all(v.item() == 0.0 for v in recall.compute().values())


def test_a_nan_competitor_counts_as_ranked_higher_and_finite_rows_are_unchanged() -> None:
    scores = torch.tensor([[0.9, float("nan"), 0.1],
                           [0.2, 0.8, 0.1],
                           [0.5, 0.1, float("inf")]])
    # row 0: the NaN item outranks the match; row 1: a plain first place; row 2: an infinite match is a miss
    assert retrieval_rank(scores).tolist() == [1, 0, torch.iinfo(torch.long).max]


def test_finite_scores_keep_the_usual_recall() -> None:
    torch.manual_seed(0)
    video = torch.randn(6, 8)
    recall = CrossModalRecall()
    recall.update(video, video + 0.01 * torch.randn(6, 8))  # each text closest to its own video
    assert recall.compute()["t2v_r1"].item() == 1.0
