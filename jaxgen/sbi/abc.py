"""Approximate Bayesian computation: rejection ABC and SMC-ABC with an adaptive tolerance."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import JaxgenWarning, check_key
from ..simulators import simulate
from .posterior import AbstractPosterior, _in_support


class ABCPosterior(AbstractPosterior):
    """Weighted particles from ABC, as a posterior.

    ``sample`` resamples the particles by weight; ``log_prob`` is a Gaussian kernel density
    estimate (Scott's bandwidth, weighted) of them. Valid for the one observation it was built
    for, which ``x_o`` must equal.
    """

    particles: Float[Array, "n d"]
    log_weights: Float[Array, " n"]
    x_o: Array
    tolerance: float = eqx.field(static=True)
    num_simulations: int = eqx.field(static=True)

    def _check(self, x_o):
        x_o = jnp.asarray(x_o, dtype=float)
        if x_o.shape != self.x_o.shape or not bool(jnp.allclose(x_o, self.x_o)):
            raise ValueError(
                "An ABC posterior is only valid for the observation it was computed for; run "
                "ABC again for a new observation (or use an amortized method such as npe)."
            )

    def sample(self, key: PRNGKeyArray, x_o: Array, num_samples: int) -> Array:
        """Resample ``num_samples`` particles by weight."""
        self._check(x_o)
        idx = jax.random.categorical(check_key(key), self.log_weights, shape=(num_samples,))
        return self.particles[idx]

    def log_prob(self, theta: Float[Array, "*batch d"], x_o: Array) -> Float[Array, "*batch"]:
        """Weighted Gaussian KDE of the particles."""
        self._check(x_o)
        theta = jnp.asarray(theta, dtype=float)
        w = jax.nn.softmax(self.log_weights)
        d = self.particles.shape[1]
        ess = 1.0 / jnp.sum(w**2)
        mean = w @ self.particles
        cov = ((self.particles - mean) * w[:, None]).T @ (self.particles - mean)
        cov = cov * ess ** (-2.0 / (d + 4)) + 1e-12 * jnp.eye(d)
        kernel = dist.MultivariateNormal(jnp.zeros(d), covariance_matrix=cov)
        flat = theta.reshape(-1, d)
        lp = jax.vmap(
            lambda t: jax.nn.logsumexp(kernel.log_prob(t - self.particles) + jnp.log(w))
        )(flat)
        return lp.reshape(theta.shape[:-1])


def _summaries(summary, x):
    if summary is None:
        return jnp.reshape(x, (x.shape[0], -1))
    return jax.vmap(lambda xi: jnp.reshape(summary(xi), (-1,)))(x)


def _scale(s):
    # Median absolute deviation per summary, so that no summary dominates the distance.
    mad = jnp.median(jnp.abs(s - jnp.median(s, 0)), 0) * 1.4826
    return jnp.where(mad > 0, mad, 1.0)


def _simulate_quiet(key, simulator, theta):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        theta, x = simulate(key, simulator, theta=theta, invalid="drop")
    return theta, x


def rejection_abc(
    key: PRNGKeyArray,
    simulator: Any,
    x_o: Array,
    *,
    num_simulations: int = 100_000,
    quantile: float | None = 0.01,
    tolerance: float | None = None,
    summary: Callable[[Array], Array] | None = None,
) -> ABCPosterior:
    """Rejection ABC (Pritchard et al. 1999): keep the prior draws whose simulated summaries lie
    within ``tolerance`` of the observed ones (distances scaled per summary by the median
    absolute deviation over the simulations).

    Args:
        key: PRNG key.
        simulator: the simulator (its prior is the proposal).
        x_o: the observation.
        num_simulations: prior draws.
        quantile: keep this fraction closest (used when ``tolerance`` is None).
        tolerance: an absolute distance threshold instead of a quantile.
        summary: ``summary(x) -> vector`` for one example (default the flattened ``x``); a
            learned one, e.g. :class:`PosteriorMeanSummary`, works too.

    Returns:
        An :class:`ABCPosterior` with equal weights.
    """
    key = check_key(key)
    k_prior, k_sim = jax.random.split(key)
    theta = simulator.prior.sample(k_prior, (num_simulations,))
    theta, x = _simulate_quiet(k_sim, simulator, theta)
    s = _summaries(summary, x)
    s_o = _summaries(summary, jnp.asarray(x_o, dtype=float)[None])[0]
    scale = _scale(s)
    distance = jnp.linalg.norm((s - s_o) / scale, axis=1)
    if tolerance is None:
        if quantile is None or not 0 < quantile <= 1:
            raise ValueError(f"`quantile` must be in (0, 1], got {quantile!r}.")
        tolerance = float(jnp.quantile(distance, quantile))
    keep = np.asarray(distance <= tolerance)
    if not keep.any():
        raise ValueError(
            f"No simulation lies within tolerance {tolerance:.3g} of x_o (closest: "
            f"{float(jnp.min(distance)):.3g}, median {float(jnp.median(distance)):.3g}). Raise "
            f"the tolerance, use `quantile=` instead, or simulate more."
        )
    particles = theta[keep]
    return ABCPosterior(
        particles, jnp.zeros(particles.shape[0]), jnp.asarray(x_o, dtype=float),
        float(tolerance), int(num_simulations),
    )


def smc_abc(
    key: PRNGKeyArray,
    simulator: Any,
    x_o: Array,
    *,
    num_particles: int = 1000,
    num_rounds: int = 8,
    alpha: float = 0.5,
    max_simulations: int = 1_000_000,
    summary: Callable[[Array], Array] | None = None,
) -> ABCPosterior:
    """Sequential Monte Carlo ABC with an adaptive tolerance (population Monte Carlo of
    Beaumont et al. 2009, tolerances as quantiles of the current distances as in Del Moral,
    Doucet & Jasra 2012).

    Each round sets the tolerance to the ``alpha`` quantile of the current particles'
    distances, then refills the population by perturbing resampled particles with a Gaussian
    kernel of twice their weighted covariance, keeping simulations within the tolerance, and
    reweighting by prior over proposal density.

    Args:
        key: PRNG key.
        simulator, x_o, summary: as in :func:`rejection_abc`.
        num_particles: population size.
        num_rounds: rounds after the initial rejection round.
        alpha: quantile of the distances that sets each round's tolerance.
        max_simulations: stop when this many simulations have been spent.

    Returns:
        An :class:`ABCPosterior` with importance weights.
    """
    key = check_key(key)
    prior = simulator.prior
    x_o = jnp.asarray(x_o, dtype=float)
    s_o = _summaries(summary, x_o[None])[0]
    key, k0, k1 = jax.random.split(key, 3)
    n0 = 5 * num_particles
    theta, x = _simulate_quiet(k1, simulator, prior.sample(k0, (n0,)))
    s = _summaries(summary, x)
    scale = _scale(s)

    def dist_fn(ss):
        return jnp.linalg.norm((ss - s_o) / scale, axis=1)

    dists = dist_fn(s)
    order = jnp.argsort(dists)[:num_particles]
    particles, d_part = theta[order], dists[order]
    log_w = jnp.zeros(num_particles)
    used = n0
    tolerance = float(d_part[-1])
    for _ in range(num_rounds):
        tolerance = float(jnp.quantile(d_part, alpha))
        w = jax.nn.softmax(log_w)
        mean = w @ particles
        cov = 2.0 * ((particles - mean) * w[:, None]).T @ (particles - mean)
        cov = cov + 1e-9 * jnp.eye(cov.shape[0])
        kernel = dist.MultivariateNormal(jnp.zeros(cov.shape[0]), covariance_matrix=cov)
        new_t, new_d = [], []
        accepted = 0
        batch = num_particles
        while accepted < num_particles and used < max_simulations:
            key, k_pick, k_move, k_sim = jax.random.split(key, 4)
            idx = jax.random.categorical(k_pick, log_w, shape=(batch,))
            prop = particles[idx] + kernel.sample(k_move, (batch,))
            ok_prior = np.asarray(_in_support(prior, prop))
            prop = prop[ok_prior]
            if prop.shape[0] == 0:
                continue
            prop, xp = _simulate_quiet(k_sim, simulator, prop)
            used += int(prop.shape[0])
            dp = dist_fn(_summaries(summary, xp))
            keep = np.asarray(dp <= tolerance)
            new_t.append(prop[keep])
            new_d.append(dp[keep])
            accepted += int(keep.sum())
            rate = max(accepted / used, 1e-3)
            batch = int(min(max((num_particles - accepted) / rate, 256), 100_000))
        if accepted < num_particles:
            warnings.warn(
                f"SMC-ABC stopped after spending max_simulations={max_simulations}; the last "
                f"round kept {accepted} of {num_particles} particles. Raise `max_simulations` "
                f"or lower `num_rounds`.",
                JaxgenWarning,
                stacklevel=2,
            )
            if accepted == 0:
                break
        new_theta = jnp.concatenate(new_t)[:num_particles]
        new_dist = jnp.concatenate(new_d)[:num_particles]
        log_q = _mixture_log_prob(kernel, particles, jax.nn.log_softmax(log_w), new_theta)
        log_w = prior.log_prob(new_theta) - log_q
        particles, d_part = new_theta, new_dist
        if accepted < num_particles:
            break
    return ABCPosterior(particles, log_w, x_o, float(tolerance), int(used))


def _mixture_log_prob(kernel, centres, log_mix, theta):
    return jax.vmap(lambda t: jax.nn.logsumexp(kernel.log_prob(t - centres) + log_mix))(theta)


class PosteriorMeanSummary(eqx.Module):
    """A learned summary statistic: the posterior mean of an NPE posterior, ``E_q[theta | x]``.

    Near-sufficient for the parameters (Fearnhead & Prangle 2012, whose regression targets
    are this mean). Estimated with ``num_samples`` flow samples drawn with a fixed ``key``, so
    the summary is a deterministic function of ``x``.

    Example:
        ```python
        summary = jg.sbi.PosteriorMeanSummary(npe_posterior, jax.random.key(0))
        abc_post = jg.sbi.rejection_abc(key, sim, x_o, summary=summary)
        ```
    """

    estimator: eqx.Module
    key: PRNGKeyArray
    num_samples: int = eqx.field(static=True, default=64)

    def __init__(self, posterior: Any, key: PRNGKeyArray, num_samples: int = 64):
        self.estimator = posterior.estimator
        self.key = check_key(key)
        self.num_samples = num_samples

    def __call__(self, x: Array) -> Float[Array, " d"]:
        features = self.estimator.condition_features(x)
        return jnp.mean(
            self.estimator.sample_given_features(self.key, features, self.num_samples), axis=0
        )
