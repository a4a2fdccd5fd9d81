"""Symbolic regression: expressions as arrays, a JAX search engine, units, exports.

Example:
    ```python
    result = jg.symbolic.fit(key, X, y, time_budget=60.0)
    result.best.sympy(); result.pareto
    ```
"""

from .distill import distill, force_law_example
from .evaluate import evaluate_expression, evaluate_population
from .expression import Expression, Population
from .fitting import fit
from .operators import DEFAULT_OPERATORS, Operator, OperatorSet
from .pysr_backend import pysr_available
from .reductions import (
    find_separation,
    fit_separable,
    fit_surrogate,
    separability_error,
    symmetry_error,
)
from .search import SearchConfig, SymbolicFit
from .selection import ParetoEntry, pareto_front, select
from .units import buckingham_pi, expression_dimensions, parse_units

__all__ = [
    "DEFAULT_OPERATORS",
    "Expression",
    "Operator",
    "OperatorSet",
    "ParetoEntry",
    "Population",
    "SearchConfig",
    "SymbolicFit",
    "buckingham_pi",
    "distill",
    "evaluate_expression",
    "evaluate_population",
    "expression_dimensions",
    "find_separation",
    "fit",
    "fit_separable",
    "fit_surrogate",
    "force_law_example",
    "pareto_front",
    "parse_units",
    "pysr_available",
    "select",
    "separability_error",
    "symmetry_error",
]
