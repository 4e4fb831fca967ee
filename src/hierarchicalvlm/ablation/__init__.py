"""What only sweeps need: the sweep report (:mod:`.report`, depth heatmaps in :mod:`.reach`) and the longest-video
search (:mod:`.max_len`). One job of a sweep is a run like any other (:mod:`hierarchicalvlm.run`)."""
