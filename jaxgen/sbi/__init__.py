"""Simulation-based inference: neural posterior estimation, posteriors and diagnostics."""

from .abc import ABCPosterior, PosteriorMeanSummary, rejection_abc, smc_abc
from .c2st import c2st
from .calibration import (
    CoverageResult,
    SBCResult,
    check_sbc,
    expected_coverage,
    run_sbc,
    sbc,
)
from .likelihood_posterior import (
    AbstractLogLikelihood,
    ExactLikelihood,
    FlowProposal,
    LikelihoodPosterior,
    flow_proposal,
)
from .mcmc import (
    AbstractSampler,
    ImportanceSampling,
    IndependenceMetropolis,
    MetropolisHastings,
    RejectionSampling,
    SamplingInfo,
    effective_sample_size,
    split_r_hat,
)
from .nle import LikelihoodEstimator, nle
from .npe import default_density_estimator, npe
from .nre import (
    AbstractRatioLoss,
    BalancedRatioLoss,
    BinaryRatioLoss,
    ContrastiveRatioLoss,
    RatioEstimator,
    nre,
)
from .posterior import AbstractPosterior, ConditionalEstimator, DirectPosterior
from .sequential import (
    RoundsResult,
    atomic_loss,
    marginal_posteriors,
    marginal_prior,
    sequential_nle,
    sequential_npe,
    sequential_nre,
    truncated_prior_sample,
)

__all__ = [
    "ABCPosterior",
    "AbstractLogLikelihood",
    "AbstractPosterior",
    "AbstractRatioLoss",
    "AbstractSampler",
    "BalancedRatioLoss",
    "BinaryRatioLoss",
    "ConditionalEstimator",
    "ContrastiveRatioLoss",
    "CoverageResult",
    "DirectPosterior",
    "ExactLikelihood",
    "FlowProposal",
    "ImportanceSampling",
    "IndependenceMetropolis",
    "LikelihoodEstimator",
    "LikelihoodPosterior",
    "MetropolisHastings",
    "PosteriorMeanSummary",
    "RatioEstimator",
    "RejectionSampling",
    "RoundsResult",
    "SBCResult",
    "SamplingInfo",
    "atomic_loss",
    "c2st",
    "check_sbc",
    "default_density_estimator",
    "effective_sample_size",
    "expected_coverage",
    "flow_proposal",
    "marginal_posteriors",
    "marginal_prior",
    "nle",
    "npe",
    "nre",
    "rejection_abc",
    "run_sbc",
    "sbc",
    "sequential_nle",
    "sequential_npe",
    "sequential_nre",
    "smc_abc",
    "split_r_hat",
    "truncated_prior_sample",
]
