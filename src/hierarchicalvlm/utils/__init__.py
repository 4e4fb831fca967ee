"""Argument checks shared across the package (attention, data): a neutral home, below every other package."""
