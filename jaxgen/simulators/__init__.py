"""Differentiable simulators, priors and the sweep engine."""

from .base import AbstractSimulator
from .damped_oscillator import DampedOscillator
from .gaussian_linear import GaussianLinear
from .lotka_volterra import LotkaVolterra
from .sir import SIR
from .sweep import SimulationInfo, simulate
from .two_moons import TwoMoons

__all__ = [
    "AbstractSimulator",
    "DampedOscillator",
    "GaussianLinear",
    "LotkaVolterra",
    "SIR",
    "SimulationInfo",
    "TwoMoons",
    "simulate",
]
