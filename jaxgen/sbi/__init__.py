"""Simulation-based inference: neural posterior estimation, posteriors and diagnostics."""

from .c2st import c2st
from .calibration import (
    CoverageResult,
    SBCResult,
    check_sbc,
    expected_coverage,
    run_sbc,
    sbc,
)
from .npe import default_density_estimator, npe
from .posterior import AbstractPosterior, ConditionalEstimator, DirectPosterior
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
from .nre import (
    AbstractRatioLoss,
    BalancedRatioLoss,
    BinaryRatioLoss,
    ContrastiveRatioLoss,
    RatioEstimator,
    nre,
)

__all__ = [
    "AbstractPosterior",
    "ConditionalEstimator",
    "CoverageResult",
    "DirectPosterior",
    "SBCResult",
    "c2st",
    "check_sbc",
    "default_density_estimator",
    "expected_coverage",
    "npe",
    "run_sbc",
    "sbc",
    "AbstractLogLikelihood",
    "ExactLikelihood",
    "LikelihoodPosterior",
    "FlowProposal",
    "flow_proposal",
    "AbstractSampler",
    "ImportanceSampling",
    "IndependenceMetropolis",
    "MetropolisHastings",
    "RejectionSampling",
    "SamplingInfo",
    "effective_sample_size",
    "split_r_hat",
    "LikelihoodEstimator",
    "nle",
    "AbstractRatioLoss",
    "BalancedRatioLoss",
    "BinaryRatioLoss",
    "ContrastiveRatioLoss",
    "RatioEstimator",
    "nre",
]
