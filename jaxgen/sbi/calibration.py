"""Calibration diagnostics: simulation-based calibration and expected coverage.

Each diagnostic is a pair: ``run_*`` does the (costly) sampling and returns raw statistics;
``check_*`` turns them into a verdict with p-values. ``sbc`` and ``expected_coverage`` do both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy import stats

from .._checks import check_key, check_same_length
from .posterior import AbstractPosterior


def _posterior_samples(key, posterior: AbstractPosterior, xs: Array, num_samples: int) -> Array:
    if hasattr(posterior, "sample_batched"):
        return posterior.sample_batched(key, xs, num_samples)
    keys = jax.random.split(key, xs.shape[0])
    return jnp.stack([posterior.sample(k, x, num_samples) for k, x in zip(keys, xs)])


def _check_pairs(theta: Any, x: Any) -> tuple[Array, Array]:
    theta, x = jnp.asarray(theta), jnp.asarray(x)
    if theta.ndim != 2:
        raise ValueError(f"`theta` must have shape (num_tests, d), got {theta.shape}.")
    check_same_length(theta=theta, x=x)
    return theta, x


@dataclasses.dataclass(frozen=True)
class SBCResult:
    """Ranks of the true parameters among posterior samples, and their uniformity tests.

    Attributes:
        ranks: ``(num_tests, d)`` integer ranks in ``0..num_posterior_samples``.
        num_posterior_samples: samples per test (the number of possible ranks minus one).
        ks_pvalues: per-dimension Kolmogorov-Smirnov p-values of the randomised ranks against
            Uniform(0, 1).
        chi2_pvalues: per-dimension chi-square p-values of the rank histogram
            (``num_bins`` equal bins).
        calibrated: whether every p-value exceeds ``alpha / (2 d)`` (Bonferroni over both tests
            and all dimensions).
    """

    ranks: np.ndarray
    num_posterior_samples: int
    ks_pvalues: np.ndarray
    chi2_pvalues: np.ndarray
    calibrated: bool


def run_sbc(
    key: PRNGKeyArray,
    posterior: AbstractPosterior,
    theta: Float[Array, "n d"],
    x: Float[Array, "n ..."],
    num_posterior_samples: int = 100,
) -> np.ndarray:
    """SBC ranks (Talts et al. 2018): for each ``(theta_i, x_i)`` drawn from the joint, the
    number of posterior samples given ``x_i`` below ``theta_i``, per dimension."""
    key = check_key(key)
    theta, x = _check_pairs(theta, x)
    samples = _posterior_samples(key, posterior, x, num_posterior_samples)
    return np.asarray(jnp.sum(samples < theta[:, None, :], axis=1))


def check_sbc(
    ranks: np.ndarray,
    num_posterior_samples: int,
    *,
    key: PRNGKeyArray | None = None,
    num_bins: int | None = None,
    alpha: float = 0.05,
) -> SBCResult:
    """Uniformity tests of SBC ranks.

    Ranks are discrete; adding U(0, 1) jitter and dividing by ``L + 1`` makes them exactly
    Uniform(0, 1) under calibration, so the continuous KS test applies. ``key`` seeds the jitter
    (default ``jax.random.key(0)``, for a deterministic verdict).
    """
    ranks = np.asarray(ranks)
    n, d = ranks.shape
    key = check_key(key) if key is not None else jax.random.key(0)
    jitter = np.asarray(jax.random.uniform(key, ranks.shape))
    u = (ranks + jitter) / (num_posterior_samples + 1)
    ks = np.array([stats.kstest(u[:, j], "uniform").pvalue for j in range(d)])
    num_bins = num_bins or int(np.clip(n // 20, 2, 20))
    counts = np.stack([np.histogram(u[:, j], bins=num_bins, range=(0, 1))[0] for j in range(d)])
    chi2 = np.array([stats.chisquare(c).pvalue for c in counts])
    calibrated = bool(np.all(ks > alpha / (2 * d)) and np.all(chi2 > alpha / (2 * d)))
    return SBCResult(ranks, num_posterior_samples, ks, chi2, calibrated)


def sbc(
    key: PRNGKeyArray,
    posterior: AbstractPosterior,
    theta: Float[Array, "n d"],
    x: Float[Array, "n ..."],
    num_posterior_samples: int = 100,
    alpha: float = 0.05,
) -> SBCResult:
    """Simulation-based calibration: :func:`run_sbc` then :func:`check_sbc`.

    Args:
        key: PRNG key.
        posterior: any posterior (``sample(key, x_o, n)``).
        theta, x: held-out pairs from the prior and simulator (not used in training).
        num_posterior_samples: samples per test; ranks take values ``0..num_posterior_samples``.
        alpha: the test level for the ``calibrated`` verdict.

    Example:
        ```python
        theta, x = jg.simulate(key, sim, 300)
        result = jg.sbi.sbc(key, posterior, theta, x)
        result.calibrated, result.ks_pvalues
        ```
    """
    k_run, k_check = jax.random.split(check_key(key))
    ranks = run_sbc(k_run, posterior, theta, x, num_posterior_samples)
    return check_sbc(ranks, num_posterior_samples, key=k_check, alpha=alpha)


@dataclasses.dataclass(frozen=True)
class CoverageResult:
    """Expected coverage of highest-posterior-density regions.

    Attributes:
        levels: nominal credibility levels in [0, 1].
        coverage: fraction of true parameters inside the HPD region of each level.
        standard_error: binomial standard error of ``coverage``.
        credibility: per test, the smallest credibility level whose HPD region holds the truth.
    """

    levels: np.ndarray
    coverage: np.ndarray
    standard_error: np.ndarray
    credibility: np.ndarray

    def max_deviation(self) -> float:
        """Largest |coverage - level| over the levels."""
        return float(np.max(np.abs(self.coverage - self.levels)))


def expected_coverage(
    key: PRNGKeyArray,
    posterior: AbstractPosterior,
    theta: Float[Array, "n d"],
    x: Float[Array, "n ..."],
    num_posterior_samples: int = 500,
    levels: Any = None,
) -> CoverageResult:
    """Expected coverage of HPD regions (Hermans et al. 2022, "A trust crisis in SBI").

    For each held-out pair, the truth lies in the HPD region of level ``alpha`` when fewer than
    a fraction ``alpha`` of posterior samples have a higher posterior density than it. A
    calibrated posterior has coverage equal to the level; below means overconfident.

    Args:
        key: PRNG key.
        posterior: a posterior with ``sample`` and ``log_prob``.
        theta, x: held-out pairs from the prior and simulator.
        num_posterior_samples: samples per test.
        levels: credibility levels (default 21 points in [0, 1]).
    """
    key = check_key(key)
    theta, x = _check_pairs(theta, x)
    levels = np.linspace(0, 1, 21) if levels is None else np.asarray(levels, dtype=float)
    samples = _posterior_samples(key, posterior, x, num_posterior_samples)
    credibility = np.empty(theta.shape[0])
    for i in range(theta.shape[0]):
        lp = posterior.log_prob(jnp.concatenate([theta[i : i + 1], samples[i]]), x[i])
        credibility[i] = float(jnp.mean(lp[1:] > lp[0]))
    coverage = np.array([np.mean(credibility <= a) for a in levels])
    se = np.sqrt(np.clip(coverage * (1 - coverage), 1e-12, None) / theta.shape[0])
    return CoverageResult(levels, coverage, se, credibility)
