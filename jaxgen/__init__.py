"""jaxgen: JAX-native physics discovery.

simulate -> infer -> design -> discover, every step a differentiable JAX function.
"""

from . import boed, flows, nn, plot, sbi, simulators, symbolic, train
from ._checks import JaxgenWarning
from .simulators import simulate

__version__ = "0.1.0"

__all__ = [
    "boed",
    "flows",
    "nn",
    "plot",
    "sbi",
    "simulators",
    "symbolic",
    "train",
    "simulate",
    "JaxgenWarning",
    "__version__",
]
