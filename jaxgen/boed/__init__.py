"""Bayesian optimal experiment design: EIG estimators and design optimization."""

from .base import AbstractEIGEstimator, BoundKind
from .constraints import AbstractConstraint, Box, OrderedTimes, Simplex, Unconstrained
from .contrastive import AdaptiveContrastive, NestedMonteCarlo, PriorContrastive
from .eig import eig, fit_estimator
from .grid import GridDesigner, candidate_grid, grid_designer
from .imitation import PolicyImitation, imitate_policy
from .networks import ConditionalPosterior, Critic
from .optimize import (
    AbstractDesignMethod,
    BayesianOptimization,
    DesignResult,
    DiscreteSearch,
    GradientAscent,
    optimize_design,
)
from .policy import (
    DesignPolicy,
    PolicyEvaluation,
    PolicyTraining,
    evaluate_policy,
    make_policy,
    train_policy,
)
from .variational import NWJ, DonskerVaradhan, InfoNCE, NeuralRatio, PosteriorBound

__all__ = [
    "NWJ",
    "AbstractConstraint",
    "AbstractDesignMethod",
    "AbstractEIGEstimator",
    "AdaptiveContrastive",
    "BayesianOptimization",
    "BoundKind",
    "Box",
    "ConditionalPosterior",
    "Critic",
    "DesignPolicy",
    "DesignResult",
    "DiscreteSearch",
    "DonskerVaradhan",
    "GradientAscent",
    "GridDesigner",
    "InfoNCE",
    "NestedMonteCarlo",
    "NeuralRatio",
    "OrderedTimes",
    "PolicyEvaluation",
    "PolicyImitation",
    "PolicyTraining",
    "PosteriorBound",
    "PriorContrastive",
    "Simplex",
    "Unconstrained",
    "candidate_grid",
    "eig",
    "evaluate_policy",
    "fit_estimator",
    "grid_designer",
    "imitate_policy",
    "make_policy",
    "optimize_design",
    "train_policy",
]
