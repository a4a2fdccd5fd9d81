"""Symbolic regression: expressions as arrays, a JAX search engine, units, exports."""

from .evaluate import evaluate_expression, evaluate_population
from .expression import Expression, Population
from .fitting import fit
from .operators import DEFAULT_OPERATORS, Operator, OperatorSet
from .search import SearchConfig, SymbolicFit
from .selection import ParetoEntry, pareto_front, select

__all__ = [
    "DEFAULT_OPERATORS",
    "Expression",
    "Operator",
    "OperatorSet",
    "ParetoEntry",
    "Population",
    "SearchConfig",
    "SymbolicFit",
    "evaluate_expression",
    "evaluate_population",
    "fit",
    "pareto_front",
    "select",
]
