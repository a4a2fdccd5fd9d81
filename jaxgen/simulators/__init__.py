"""Differentiable simulators, priors and the sweep engine."""

from .base import AbstractSimulator
from .chirp import Chirp
from .damped_oscillator import DampedOscillator
from .gaussian_linear import GaussianLinear
from .latent import AbstractLatentSimulator, PartonDetector
from .lotka_volterra import LotkaVolterra
from .sir import SIR
from .sweep import SimulationInfo, simulate
from .two_moons import TwoMoons

__all__ = [
    "AbstractLatentSimulator",
    "AbstractSimulator",
    "Chirp",
    "DampedOscillator",
    "GaussianLinear",
    "LotkaVolterra",
    "PartonDetector",
    "SIR",
    "SimulationInfo",
    "TwoMoons",
    "simulate",
]
