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
]
