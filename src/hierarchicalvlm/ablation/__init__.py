"""What only sweeps need: the sweep report (:mod:`.report`, depth heatmaps in :mod:`.reach`) and the longest-video
search (:mod:`.max_len`), and ``load_sweep``: a sweep as a pandas DataFrame. One job of a sweep is a run like any other (:mod:`hierarchicalvlm.run`)."""

from .sweep import load_sweep

__all__ = ["load_sweep"]
