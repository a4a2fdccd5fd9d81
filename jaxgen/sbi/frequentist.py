"""Frequentist use of a learned ratio: calibrated likelihood ratios, likelihood-ratio tests and
confidence sets whose coverage can be checked by simulation."""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy import stats

from .._checks import check_key
from ..simulators import simulate
from .likelihood_posterior import AbstractLogLikelihood


def log_likelihood_ratio(
    log_likelihood: AbstractLogLikelihood,
    x: Float[Array, "num_obs ..."],
    theta0: Float[Array, " d"],
    theta1: Float[Array, " d"],
) -> Float[Array, ""]:
    """``sum_i log p(x_i | theta0) / p(x_i | theta1)`` from a ratio (or likelihood) model.

    For an NRE classifier ``log r(x; theta) = log p(x | theta) / p(x)``, the difference at two
    parameter points is the parametrized-classifier ratio ``r(x; theta0, theta1)`` of
    Cranmer, Pavez & Louppe (2015), "Approximating likelihood ratios with calibrated
    discriminative classifiers".
    """
    x = jnp.asarray(x, dtype=float)
    per = jax.vmap(lambda xi: log_likelihood(theta0, xi) - log_likelihood(theta1, xi))(x)
    return jnp.sum(per)


class CalibratedRatio(eqx.Module):
    """``log p_hat(s | theta0) - log p_hat(s | theta1)`` with ``s`` the raw log-ratio of one
    ``x``: the 1-D density of the classifier output, histogrammed under both hypotheses.

    Whatever the classifier's miscalibration, a monotonic score ``s`` gives the exact ratio
    once its own densities are used (Cranmer et al. 2015).
    """

    log_likelihood: AbstractLogLikelihood
    theta0: Array
    theta1: Array
    edges: Array
    log_density0: Array
    log_density1: Array

    def score(self, x: Array) -> Float[Array, ""]:
        return self.log_likelihood(self.theta0, x) - self.log_likelihood(self.theta1, x)

    def __call__(self, x: Array) -> Float[Array, ""]:
        s = self.score(x)
        i = jnp.clip(jnp.searchsorted(self.edges, s) - 1, 0, self.edges.shape[0] - 2)
        return self.log_density0[i] - self.log_density1[i]


def calibrate_ratio(
    key: PRNGKeyArray,
    log_likelihood: AbstractLogLikelihood,
    simulator: Any,
    theta0: Array,
    theta1: Array,
    *,
    num_simulations: int = 10_000,
    num_bins: int = 40,
) -> CalibratedRatio:
    """Calibrate the ratio between ``theta0`` and ``theta1`` by histograms of the raw log-ratio
    on fresh simulations at each point (equal-mass bins of the pooled scores, one pseudo-count
    per bin so no bin is empty)."""
    key = check_key(key)
    k0, k1 = jax.random.split(key)
    theta0 = jnp.asarray(theta0, dtype=float)
    theta1 = jnp.asarray(theta1, dtype=float)
    _, x0 = simulate(k0, simulator, theta=jnp.tile(theta0, (num_simulations, 1)))
    _, x1 = simulate(k1, simulator, theta=jnp.tile(theta1, (num_simulations, 1)))
    model = CalibratedRatio(log_likelihood, theta0, theta1, jnp.zeros(2), jnp.zeros(1),
                            jnp.zeros(1))
    s0 = np.asarray(jax.jit(jax.vmap(model.score))(x0))
    s1 = np.asarray(jax.jit(jax.vmap(model.score))(x1))
    pooled = np.concatenate([s0, s1])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, num_bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    c0 = np.histogram(s0, edges)[0] + 1.0
    c1 = np.histogram(s1, edges)[0] + 1.0
    # Equal bin widths cancel in the ratio; only the probabilities per bin matter.
    return CalibratedRatio(
        log_likelihood, theta0, theta1, jnp.asarray(edges), jnp.log(c0 / c0.sum()),
        jnp.log(c1 / c1.sum()),
    )


@dataclasses.dataclass(frozen=True)
class ConfidenceSet:
    """A likelihood-ratio-test confidence set on a parameter grid.

    Attributes:
        theta_grid: ``(g, d)`` grid points.
        statistic: ``-2 log lambda(theta) = -2 [l(theta) - max_grid l]`` at each point.
        threshold: the chi-square quantile (Wilks' theorem).
        inside: grid points in the set.
        best_fit: the grid maximum-likelihood point.
    """

    theta_grid: np.ndarray
    statistic: np.ndarray
    threshold: float
    inside: np.ndarray
    best_fit: np.ndarray


@eqx.filter_jit
def _profile(log_likelihood, x, grid):
    return jax.vmap(
        lambda t: jnp.sum(jax.vmap(lambda xi: log_likelihood(t, xi))(x))
    )(grid)


def likelihood_ratio_test(
    log_likelihood: AbstractLogLikelihood,
    x: Float[Array, "num_obs ..."],
    theta_grid: Float[Array, "g d"],
    *,
    level: float = 0.95,
) -> ConfidenceSet:
    """Confidence set ``{theta : -2 log lambda(theta) <= chi2_d(level)}`` from a learned ratio
    (or likelihood) over i.i.d. observations ``x``, maximising over the grid.

    Example:
        ```python
        ratio = jg.sbi.nre(key, theta, x, prior=sim.prior).log_likelihood
        cs = jg.sbi.likelihood_ratio_test(ratio, x_obs, grid, level=0.68)
        ```
    """
    grid = jnp.asarray(theta_grid, dtype=float)
    if grid.ndim == 1:
        grid = grid[:, None]
    x = jnp.asarray(x, dtype=float)
    ll = np.asarray(_profile(log_likelihood, x, grid))
    stat = -2.0 * (ll - ll.max())
    threshold = float(stats.chi2.ppf(level, df=grid.shape[1]))
    return ConfidenceSet(np.asarray(grid), stat, threshold, stat <= threshold,
                         np.asarray(grid[int(np.argmax(ll))]))


def interval_coverage(
    key: PRNGKeyArray,
    log_likelihood: AbstractLogLikelihood,
    simulator: Any,
    theta_true: Float[Array, " d"],
    theta_grid: Float[Array, "g d"],
    *,
    num_obs: int = 10,
    num_trials: int = 200,
    level: float = 0.68,
) -> tuple[float, float]:
    """Coverage of :func:`likelihood_ratio_test` sets by simulation: the fraction of
    ``num_trials`` pseudo-experiments (each ``num_obs`` i.i.d. observations at ``theta_true``)
    whose set contains ``theta_true``.

    Returns:
        ``(coverage, standard_error)``; a calibrated test has coverage ``level``.
    """
    key = check_key(key)
    theta_true = jnp.asarray(theta_true, dtype=float)
    grid = jnp.asarray(theta_grid, dtype=float)
    if grid.ndim == 1:
        grid = grid[:, None]
    grid = jnp.concatenate([grid, theta_true[None]])
    _, xs = simulate(key, simulator, theta=jnp.tile(theta_true, (num_trials * num_obs, 1)))
    xs = xs.reshape(num_trials, num_obs, *xs.shape[1:])
    ll = np.asarray(jax.vmap(lambda x: _profile(log_likelihood, x, grid))(xs))
    stat_true = -2.0 * (ll[:, -1] - ll.max(axis=1))
    covered = stat_true <= stats.chi2.ppf(level, df=grid.shape[1])
    cov = float(covered.mean())
    return cov, float(np.sqrt(max(cov * (1 - cov), 1e-12) / num_trials))
