"""The training loop shared by every model: splits, scanned epochs, early stopping, NaN guard."""

from .fit import History, fit

__all__ = ["History", "fit"]
