"""Posteriors known through a likelihood (or likelihood ratio) and a prior, sampled by MCMC,
importance or rejection sampling."""

from __future__ import annotations

import abc
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import JaxgenWarning, check_key
from .mcmc import (
    AbstractSampler,
    AbstractTarget,
    MetropolisHastings,
    SamplingInfo,
    mixing_diagnostics,
)
from .posterior import AbstractPosterior, _in_support


class AbstractLogLikelihood(eqx.Module):
    """``log p(x | theta)`` up to a term constant in ``theta``, for ONE pair.

    Learned likelihoods (NLE), likelihood-to-evidence ratios (NRE) and exact simulator
    likelihoods all meet this contract; i.i.d. observations add their terms.
    """

    @abc.abstractmethod
    def __call__(self, theta: Float[Array, " d"], x: Array) -> Float[Array, ""]:
        """The log-likelihood (or log-ratio) of one observation ``x`` at ``theta``."""

    def check_observations(self, x_o: Array) -> None:
        """Raise (on the host, before sampling) when the observations ``(n, *x_shape)`` lie
        where the likelihood is undefined. Nothing to check by default."""


class ExactLikelihood(AbstractLogLikelihood):
    """A simulator's own ``log_likelihood`` (for exact MCMC, e.g. with an NPE proposal)."""

    simulator: eqx.Module

    def __init__(self, simulator: Any):
        if not getattr(simulator, "has_likelihood", False):
            raise ValueError(
                f"{type(simulator).__name__} has no tractable `log_likelihood`; exact sampling "
                f"needs one. Use a learned likelihood (`jg.sbi.nle`) or ratio (`jg.sbi.nre`)."
            )
        self.simulator = simulator

    def __call__(self, theta, x):
        return self.simulator.log_likelihood(theta, x)


class _Target(AbstractTarget):
    log_likelihood_fn: AbstractLogLikelihood
    prior: dist.Distribution
    x_o: Array  # (num_obs, *x_shape)

    def log_likelihood(self, theta):
        terms = jax.vmap(lambda x: self.log_likelihood_fn(theta, x))(self.x_o)
        return jnp.sum(terms)

    def log_prior(self, theta):
        lp = self.prior.log_prob(theta)
        return jnp.where(_in_support(self.prior, theta), lp, -jnp.inf)

    def sample_prior(self, key, num):
        return self.prior.sample(key, (num,))


def check_observations(
    x_o: Any, x_shape: tuple[int, ...], log_likelihood: AbstractLogLikelihood | None = None
) -> Array:
    """One observation ``x_shape`` or i.i.d. observations ``(n, *x_shape)`` -> ``(n, *x_shape)``."""
    x_o = jnp.asarray(x_o, dtype=float)
    if x_o.shape == x_shape:
        x_o = x_o[None]
    elif x_o.shape[1:] != x_shape or x_o.ndim != len(x_shape) + 1 or x_o.shape[0] == 0:
        raise ValueError(
            f"`x_o` must be one observation with the shape of a training simulation {x_shape}, "
            f"or a stack of i.i.d. observations (num_obs, *{x_shape}); got shape {x_o.shape}. "
            f"Simulate the training data with the same settings as the observation."
        )
    if not bool(jnp.all(jnp.isfinite(x_o))):
        raise ValueError("`x_o` contains NaN or inf; the posterior is undefined there.")
    if log_likelihood is not None:
        log_likelihood.check_observations(x_o)
    return x_o


class LikelihoodPosterior(AbstractPosterior):
    """p(theta | x_o) proportional to p(theta) times a (learned) likelihood or ratio.

    ``x_o`` may be one observation or several i.i.d. observations stacked on a leading axis;
    their log-likelihoods add. Sampling uses the ``sampler`` strategy (default: 100 vectorised
    Metropolis chains); after MCMC the chains are checked with split R-hat and the effective
    sample size, and a :class:`~jaxgen.JaxgenWarning` says when they have not mixed.

    ``log_prob`` is the unnormalised log posterior; pass ``key`` to normalise it with an
    importance estimate of the evidence from prior draws.
    """

    log_likelihood: AbstractLogLikelihood
    prior: dist.Distribution
    x_shape: tuple[int, ...] = eqx.field(static=True)
    theta_dim: int = eqx.field(static=True)
    sampler: AbstractSampler = MetropolisHastings()

    def with_sampler(self, sampler: AbstractSampler) -> LikelihoodPosterior:
        """The same posterior with another sampling strategy."""
        return eqx.tree_at(lambda p: p.sampler, self, sampler)

    def potential(self, theta: Float[Array, " d"], x_o: Array) -> Float[Array, ""]:
        """Unnormalised log posterior for one ``theta`` (jit/grad-friendly)."""
        x_o = check_observations(x_o, self.x_shape, self.log_likelihood)
        return _Target(self.log_likelihood, self.prior, x_o).log_density(theta)

    def sample(
        self,
        key: PRNGKeyArray,
        x_o: Array,
        num_samples: int,
        *,
        return_info: bool = False,
        warn: bool = True,
    ) -> Float[Array, "num_samples d"] | tuple[Array, SamplingInfo]:
        """Draw ``num_samples`` samples from the posterior at ``x_o``.

        Args:
            key: PRNG key.
            x_o: one observation, or i.i.d. observations ``(num_obs, *x_shape)``.
            num_samples: number of samples.
            return_info: also return the :class:`~jaxgen.sbi.SamplingInfo` (R-hat, ESS,
                acceptance).
            warn: warn when the sampler did not converge.
        """
        key = check_key(key)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")
        x_o = check_observations(x_o, self.x_shape, self.log_likelihood)
        samples, trace = _run_sampler(self.sampler, key, self.log_likelihood, self.prior, x_o,
                                      num_samples)
        info = mixing_diagnostics(type(self.sampler).__name__, samples, trace)
        if not bool(jnp.all(jnp.isfinite(samples))):
            bad = int(np.sum(~np.all(np.isfinite(np.asarray(samples)), axis=1)))
            raise RuntimeError(
                f"{type(self.sampler).__name__} returned {bad} of {num_samples} samples as NaN: "
                f"too few proposals were accepted (acceptance {info.acceptance_rate:.2e}). Raise "
                f"`num_proposals`, or use `MetropolisHastings()`."
            )
        if warn:
            _warn_if_poor(info)
        return (samples, info) if return_info else samples

    def log_prob(
        self,
        theta: Float[Array, "*batch d"],
        x_o: Array,
        *,
        key: PRNGKeyArray | None = None,
        num_evidence_samples: int = 10_000,
    ) -> Float[Array, "*batch"]:
        """Unnormalised log posterior ``log p(theta) + sum_i log L(x_i | theta)``.

        With ``key``, the log evidence estimated from ``num_evidence_samples`` prior draws is
        subtracted, so the density integrates to (approximately) one.
        """
        x_o = check_observations(x_o, self.x_shape, self.log_likelihood)
        theta = jnp.asarray(theta, dtype=float)
        if theta.ndim == 0 or theta.shape[-1] != self.theta_dim:
            raise ValueError(
                f"`theta` must have shape (*batch, {self.theta_dim}), got shape {theta.shape}."
            )
        flat = theta.reshape(-1, self.theta_dim)
        out = _log_density_jit(self.log_likelihood, self.prior, x_o, flat).reshape(
            theta.shape[:-1]
        )
        if key is not None:
            prior_draws = self.prior.sample(check_key(key), (num_evidence_samples,))
            log_l = _log_likelihood_jit(self.log_likelihood, self.prior, x_o, prior_draws)
            out = out - (jax.nn.logsumexp(log_l) - jnp.log(num_evidence_samples))
        return out


def _warn_if_poor(info: SamplingInfo) -> None:
    if info.converged:
        return
    worst_r = float(np.nanmax(info.r_hat)) if np.any(np.isfinite(info.r_hat)) else float("nan")
    warnings.warn(
        f"{info.method} may not have converged: split R-hat max {worst_r:.3g} (want < 1.1), "
        f"effective sample size min {float(np.min(info.ess)):.3g} of {info.num_samples} "
        f"samples, acceptance {info.acceptance_rate:.3g}. The samples may not represent the "
        f"posterior: use more warm-up or chains (`MetropolisHastings(num_warmup=..., "
        f"num_chains=...)`), or a multimodal-friendly sampler such as `ImportanceSampling()`.",
        JaxgenWarning,
        stacklevel=4,  # past this helper, `sample` and equinox's method wrapper
    )


@eqx.filter_jit
def _run_sampler(sampler, key, log_likelihood, prior, x_o, num_samples: int):
    return sampler.run(key, _Target(log_likelihood, prior, x_o), num_samples)


@eqx.filter_jit
def _log_density_jit(log_likelihood, prior, x_o, theta):
    return jax.vmap(_Target(log_likelihood, prior, x_o).log_density)(theta)


@eqx.filter_jit
def _log_likelihood_jit(log_likelihood, prior, x_o, theta):
    return jax.vmap(_Target(log_likelihood, prior, x_o).log_likelihood)(theta)


class FlowProposal(eqx.Module):
    """A :class:`~jaxgen.sbi.DirectPosterior` frozen at one observation, as an MCMC proposal.

    Draws are not restricted to the prior's support (the target is ``-inf`` there, so such
    proposals are simply rejected, which keeps the chain exact).
    """

    estimator: eqx.Module
    features: Array

    def sample_and_log_prob(self, key: PRNGKeyArray, num: int) -> tuple[Array, Array]:
        theta = self.estimator.sample_given_features(key, self.features, num)
        log_q = jax.vmap(self.log_prob)(theta)
        return theta, log_q

    def log_prob(self, theta: Float[Array, " d"]) -> Float[Array, ""]:
        z = self.estimator.value_standardizer(theta)
        log_q = self.estimator.density._log_prob(z, self.features)
        return log_q + self.estimator.value_standardizer.log_abs_det()


def flow_proposal(posterior: Any, x_o: Array) -> FlowProposal:
    """Freeze an NPE posterior (:class:`~jaxgen.sbi.DirectPosterior`) at ``x_o`` for
    :class:`~jaxgen.sbi.IndependenceMetropolis`.

    Example:
        ```python
        npe_post = jg.sbi.npe(key, theta, x, prior=sim.prior)
        exact = jg.sbi.LikelihoodPosterior(
            jg.sbi.ExactLikelihood(sim), sim.prior, sim.x_shape(), sim.theta_dim,
            jg.sbi.IndependenceMetropolis(jg.sbi.flow_proposal(npe_post, x_o)),
        )
        samples = exact.sample(key, x_o, 10_000)   # exact posterior, nearly independent draws
        ```
    """
    estimator = getattr(posterior, "estimator", None)
    if estimator is None or not hasattr(estimator, "sample_given_features"):
        raise TypeError(
            f"`posterior` must be an NPE posterior (`jg.sbi.DirectPosterior`), got "
            f"{type(posterior).__name__}."
        )
    x_o = jnp.asarray(x_o, dtype=float)
    if x_o.shape != tuple(posterior.x_shape):
        raise ValueError(
            f"The proposal is conditioned on ONE observation of shape {posterior.x_shape}, got "
            f"shape {x_o.shape}."
        )
    return FlowProposal(estimator, estimator.condition_features(x_o))
