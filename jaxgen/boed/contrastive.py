"""Likelihood-based EIG estimators: nested Monte Carlo and (adaptive) contrastive bounds."""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float

from .base import (
    DEFAULT_CHUNK_SIZE,
    AbstractEIGEstimator,
    BoundKind,
    check_likelihood,
    check_positive_int,
    chunked_logsumexp,
    inner_chunking,
    map_outer,
    mean_and_stderr,
    sample_joint,
)
from .networks import ConditionalPosterior, make_conditional_posterior


def prior_log_prob(prior: dist.Distribution, theta: Float[Array, " d"]) -> Float[Array, ""]:
    """``log p(theta)``, ``-inf`` outside the support (numpyro does not mask it by itself)."""
    inside = prior.support(theta)
    inside = jnp.all(inside) if jnp.ndim(inside) else inside
    # The mean lies inside every convex support; evaluating there keeps gradients finite.
    safe = jnp.where(inside, theta, jax.lax.stop_gradient(prior.mean))
    return jnp.where(inside, prior.log_prob(safe), -jnp.inf)


def _score_surrogate(
    terms: Float[Array, " n"], log_lik: Float[Array, " n"]
) -> Float[Array, " n"]:
    """Terms whose value is ``terms`` and whose gradient adds the score-function term.

    For outcomes that are not differentiable in the design (counts, choices) the gradient of
    ``E_{x ~ p(x | theta, d)}[g(x, d)]`` is ``E[grad g + g grad log p(x | theta, d)]``; a
    leave-one-out mean of ``g`` is subtracted as a baseline to cut its variance (Williams 1992;
    used for the discrete models of Foster et al. 2021). The pathwise gradient of ``g`` holds
    ``x`` fixed, so for the contrastive terms ``g = log p(x | theta_0, d) - ...`` it contains
    ``grad log p(x | theta_0, d)`` itself: the score, whose mean is zero. It is taken out
    (equivalently, the score's coefficient is ``g - baseline - 1``): same expectation, less
    variance, as in Foster et al.'s score-gradient estimator.
    """
    n = terms.shape[0]
    g = jax.lax.stop_gradient(terms)
    baseline = (jnp.sum(g) - g) / max(n - 1, 1)
    return terms + (g - baseline - 1.0) * (log_lik - jax.lax.stop_gradient(log_lik))


class _AbstractNested(AbstractEIGEstimator):
    """Shared outer loop of the nested estimators: one term per outer sample (theta_0, x)."""

    num_outer: eqx.AbstractVar[int]
    num_inner: eqx.AbstractVar[int]
    chunk_size: eqx.AbstractVar[int]
    score_gradient: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def _outer_term(self, key, simulator, design) -> tuple[Array, Array]:
        """(term, log p(x | theta_0, d)) for one outer sample."""

    def _terms(self, key, simulator, design):
        check_likelihood(simulator, type(self).__name__)
        outer_batch, _ = inner_chunking(self.num_outer, self.num_inner, self.chunk_size)
        terms, log_lik = map_outer(
            lambda k: self._outer_term(k, simulator, design), key, self.num_outer, outer_batch
        )
        if self.score_gradient:
            terms = _score_surrogate(terms, log_lik)
        return terms

    def estimate_with_stderr(self, key, simulator, design):
        return mean_and_stderr(self._terms(key, simulator, design))

    def _draw_outcome(self, key, simulator, design):
        k_theta, k_x = jax.random.split(key)
        theta0 = simulator.prior.sample(k_theta)
        x = simulator(k_x, theta0, design)
        if self.score_gradient:
            x = jax.lax.stop_gradient(x)
        return theta0, x


class PriorContrastive(_AbstractNested):
    """Prior contrastive estimation (PCE): a lower bound on the EIG.

    ``PCE = E[ log p(x | theta_0, d) - log (1/(L+1)) sum_{l=0}^{L} p(x | theta_l, d) ]`` with
    ``theta_0, ..., theta_L ~ p(theta)`` and ``x ~ p(x | theta_0, d)``. It is a lower bound for
    every ``L``, tight as ``L -> inf``, and never exceeds ``log(L + 1)`` (Foster et al. 2020,
    *A Unified Stochastic Gradient Approach to Designing Bayesian-Optimal Experiments*, AISTATS).
    Applied to a whole history of experiments it is the sPCE bound of Foster et al. 2021.

    Args:
        num_outer: outer samples ``(theta_0, x)`` (N).
        num_inner: contrastive samples per outer sample (L); 10^5 and more run in chunks.
        chunk_size: most likelihood evaluations live at once (memory bound).
        score_gradient: add the score-function term to the design gradient, for simulators
            whose outcomes are not differentiable in the design (counts, binary choices).

    Example:
        ```python
        est = jg.boed.PriorContrastive(num_outer=512, num_inner=512)
        eig, stderr = est.estimate_with_stderr(key, sim, design)
        ```
    """

    num_outer: int = eqx.field(static=True, default=256)
    num_inner: int = eqx.field(static=True, default=256)
    chunk_size: int = eqx.field(static=True, default=DEFAULT_CHUNK_SIZE)
    score_gradient: bool = eqx.field(static=True, default=False)
    kind: ClassVar[BoundKind] = BoundKind.LOWER

    def __check_init__(self):
        check_positive_int("num_outer", self.num_outer, 2)
        check_positive_int("num_inner", self.num_inner)
        check_positive_int("chunk_size", self.chunk_size)

    def _outer_term(self, key, simulator, design):
        k_out, k_in = jax.random.split(key)
        theta0, x = self._draw_outcome(k_out, simulator, design)
        log_lik0 = simulator.log_likelihood(theta0, x, design)
        _, chunk = inner_chunking(self.num_outer, self.num_inner, self.chunk_size)
        lse = chunked_logsumexp(
            k_in,
            lambda k, n: simulator.prior.sample(k, (n,)),
            jax.vmap(lambda t: simulator.log_likelihood(t, x, design)),
            self.num_inner,
            chunk,
        )
        log_marginal = jnp.logaddexp(log_lik0, lse) - math.log(self.num_inner + 1)
        return log_lik0 - log_marginal, log_lik0


class NestedMonteCarlo(_AbstractNested):
    """Nested Monte Carlo (NMC): an upper bound on the EIG, consistent as ``L -> inf``.

    ``NMC = E[ log p(x | theta_0, d) - log (1/L) sum_{l=1}^{L} p(x | theta_l, d) ]``: the same
    as PCE but ``theta_0`` is left out of the inner mean, which makes the estimator biased
    upwards for every ``L`` (Rainforth et al. 2018, *On Nesting Monte Carlo Estimators*, ICML);
    applied to a history of experiments it is the sNMC upper bound of Foster et al. 2021,
    *Deep Adaptive Design*, ICML.

    Args: as :class:`PriorContrastive`.
    """

    num_outer: int = eqx.field(static=True, default=256)
    num_inner: int = eqx.field(static=True, default=256)
    chunk_size: int = eqx.field(static=True, default=DEFAULT_CHUNK_SIZE)
    score_gradient: bool = eqx.field(static=True, default=False)
    kind: ClassVar[BoundKind] = BoundKind.UPPER

    def __check_init__(self):
        check_positive_int("num_outer", self.num_outer, 2)
        check_positive_int("num_inner", self.num_inner)
        check_positive_int("chunk_size", self.chunk_size)

    def _outer_term(self, key, simulator, design):
        k_out, k_in = jax.random.split(key)
        theta0, x = self._draw_outcome(k_out, simulator, design)
        log_lik0 = simulator.log_likelihood(theta0, x, design)
        _, chunk = inner_chunking(self.num_outer, self.num_inner, self.chunk_size)
        lse = chunked_logsumexp(
            k_in,
            lambda k, n: simulator.prior.sample(k, (n,)),
            jax.vmap(lambda t: simulator.log_likelihood(t, x, design)),
            self.num_inner,
            chunk,
        )
        return log_lik0 - (lse - math.log(self.num_inner)), log_lik0


class AdaptiveContrastive(_AbstractNested):
    """Adaptive contrastive estimation (ACE): PCE with contrastive samples from a learned proposal.

    ``ACE = E[ log p(x | theta_0, d) - log (1/(L+1)) sum_{l=0}^{L} p(x | theta_l, d) p(theta_l)
    / q(theta_l | x) ]`` with ``theta_{1..L} ~ q(theta | x)``. A lower bound for every proposal
    ``q``; it is tight when ``q`` is the posterior, so far fewer contrastive samples are needed
    than for PCE (Foster et al. 2020, AISTATS). ``q`` is a conditional flow trained by maximum
    likelihood on simulated pairs (the Barber-Agakov objective, whose optimum is the posterior,
    where the bound is tight) with :func:`jaxgen.boed.fit_estimator` or jointly with the design
    in :func:`jaxgen.boed.optimize_design`; this costs one flow evaluation per pair instead of
    ``L`` reparameterized draws per pair for ascending the bound itself.

    Args:
        num_outer, num_inner, chunk_size, score_gradient: as :class:`PriorContrastive`.
        proposal: the learned ``q(theta | x)``; built by :meth:`init` when ``None``.
    """

    num_outer: int = eqx.field(static=True, default=128)
    num_inner: int = eqx.field(static=True, default=32)
    chunk_size: int = eqx.field(static=True, default=DEFAULT_CHUNK_SIZE)
    score_gradient: bool = eqx.field(static=True, default=False)
    proposal: ConditionalPosterior | None = None
    kind: ClassVar[BoundKind] = BoundKind.LOWER

    def __check_init__(self):
        check_positive_int("num_outer", self.num_outer, 2)
        check_positive_int("num_inner", self.num_inner)

    def init(self, key, simulator, design):
        if self.proposal is not None:
            return self
        proposal = make_conditional_posterior(key, simulator, design)
        return eqx.tree_at(lambda e: e.proposal, self, proposal, is_leaf=lambda v: v is None)

    def objective(self, key, simulator, design):
        k_bound, k_fit = jax.random.split(key)
        frozen = eqx.tree_at(
            lambda e: e.proposal, self, jax.lax.stop_gradient(self.proposal)
        )
        bound = frozen.estimate(k_bound, simulator, design)
        theta, x = sample_joint(k_fit, simulator, jax.lax.stop_gradient(design), self.num_outer)
        log_q = jnp.mean(jax.vmap(self.proposal.log_prob)(theta, x))
        return bound + log_q - jax.lax.stop_gradient(log_q)

    def _outer_term(self, key, simulator, design):
        if self.proposal is None:
            raise ValueError(
                "AdaptiveContrastive has no proposal yet: call `estimator.init(key, simulator, "
                "design)` (and train it with `jg.boed.fit_estimator`), or use `jg.boed.eig`."
            )
        k_out, k_in = jax.random.split(key)
        theta0, x = self._draw_outcome(k_out, simulator, design)
        log_lik0 = simulator.log_likelihood(theta0, x, design)
        prior = simulator.prior

        def log_weight(theta, log_q):
            return (
                simulator.log_likelihood(theta, x, design) + prior_log_prob(prior, theta) - log_q
            )

        log_w0 = log_weight(theta0, self.proposal.log_prob(theta0, x))
        _, chunk = inner_chunking(self.num_outer, self.num_inner, self.chunk_size)
        lse = chunked_logsumexp(
            k_in,
            lambda k, n: self.proposal.sample_and_log_prob(k, x, n),
            lambda draws: jax.vmap(log_weight)(*draws),
            self.num_inner,
            chunk,
        )
        log_marginal = jnp.logaddexp(log_w0, lse) - math.log(self.num_inner + 1)
        return log_lik0 - log_marginal, log_lik0


__all__ = ["AdaptiveContrastive", "NestedMonteCarlo", "PriorContrastive", "prior_log_prob"]
