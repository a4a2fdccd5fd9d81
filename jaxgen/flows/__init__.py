"""jaxgen.flows: bijections and (conditional) normalizing flows."""

from .autoregressive import MaskedAutoregressive
from .base import AbstractConditionalDensity
from .bijection import AbstractBijection
from .coupling import Coupling
from .flow import (
    Flow,
    coupling_flow,
    maf,
    masked_autoregressive_flow,
    neural_spline_flow,
    real_nvp,
)
from .transformers import AbstractTransformer, Affine, RationalQuadraticSpline

__all__ = [
    "AbstractBijection",
    "AbstractConditionalDensity",
    "AbstractTransformer",
    "Affine",
    "Coupling",
    "Flow",
    "MaskedAutoregressive",
    "RationalQuadraticSpline",
    "coupling_flow",
    "maf",
    "masked_autoregressive_flow",
    "neural_spline_flow",
    "real_nvp",
]
