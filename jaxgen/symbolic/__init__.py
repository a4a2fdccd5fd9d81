"""Symbolic regression: expressions as arrays, a JAX search engine, units, exports."""

from .evaluate import evaluate_expression, evaluate_population
from .expression import Expression, Population
from .operators import DEFAULT_OPERATORS, Operator, OperatorSet

__all__ = [
    "DEFAULT_OPERATORS",
    "Expression",
    "Operator",
    "OperatorSet",
    "Population",
    "evaluate_expression",
    "evaluate_population",
]
