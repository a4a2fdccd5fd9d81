"""Differentiable simulators, priors and the sweep engine."""

from .base import AbstractSimulator

__all__ = ["AbstractSimulator", "simulate"]


def simulate(*args, **kwargs):  # replaced by the sweep engine in sweep.py
    from .sweep import simulate as _simulate

    return _simulate(*args, **kwargs)
