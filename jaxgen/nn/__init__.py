"""Equinox building blocks: MLPs, residual MLPs, embedding networks, standardization."""

from .deepset import DeepSetEmbedding
from .embedding import AbstractEmbedding, CNN1dEmbedding, IdentityEmbedding, MLPEmbedding
from .mlp import MLP, ResidualMLP, zero_last_layer
from .standardize import Standardizer

__all__ = [
    "MLP",
    "AbstractEmbedding",
    "CNN1dEmbedding",
    "DeepSetEmbedding",
    "IdentityEmbedding",
    "MLPEmbedding",
    "ResidualMLP",
    "Standardizer",
    "zero_last_layer",
]
