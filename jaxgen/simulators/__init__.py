"""Differentiable simulators, priors and the sweep engine."""

from .base import AbstractSimulator
from .chirp import Chirp
from .damped_oscillator import DampedOscillator
from .death_process import DeathProcess
from .gaussian_linear import GaussianLinear
from .hyperbolic_discounting import HyperbolicDiscounting
from .latent import AbstractLatentSimulator, NumpyroSimulator, PartonDetector
from .linear_regression import LinearGaussianRegression
from .lotka_volterra import LotkaVolterra
from .sir import SIR
from .stochastic import Pharmacokinetic, StochasticSIR
from .sweep import SimulationInfo, simulate
from .two_moons import TwoMoons
from .weinberg import Weinberg

__all__ = [
    "SIR",
    "AbstractLatentSimulator",
    "AbstractSimulator",
    "Chirp",
    "DampedOscillator",
    "DeathProcess",
    "GaussianLinear",
    "HyperbolicDiscounting",
    "LinearGaussianRegression",
    "LotkaVolterra",
    "NumpyroSimulator",
    "PartonDetector",
    "Pharmacokinetic",
    "SimulationInfo",
    "StochasticSIR",
    "TwoMoons",
    "Weinberg",
    "simulate",
]
