"""Argument checks shared across the package (attention, data): one wording for the same mistake everywhere."""

from __future__ import annotations


def check_positive(**values: float | int) -> None:
    """Raise a ValueError naming the first argument that is not > 0."""
    for name, value in values.items():
        if value is None or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
