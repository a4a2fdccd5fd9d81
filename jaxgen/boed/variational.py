"""Learned EIG bounds: the Barber-Agakov posterior bound and critic-based mutual-information bounds.

The critic-based estimators need only samples from the simulator, so they serve implicit
simulators (no likelihood); the design gradient flows through the simulated ``x``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .base import AbstractEIGEstimator, BoundKind, check_positive_int, mean_and_stderr, sample_joint
from .contrastive import prior_log_prob
from .networks import ConditionalPosterior, Critic, make_conditional_posterior, make_critic


def _missing(name: str, what: str) -> ValueError:
    return ValueError(
        f"{name} has no {what} yet: call `estimator.init(key, simulator, design)` and train it "
        f"with `jg.boed.fit_estimator`, or let `jg.boed.eig` / `jg.boed.optimize_design` do both."
    )


class PosteriorBound(AbstractEIGEstimator):
    """The Barber-Agakov bound with a conditional-flow posterior ``q(theta | x, d)``.

    ``EIG(d) >= E_{p(theta) p(x | theta, d)}[ log q(theta | x) - log p(theta) ]`` for every
    ``q``, with equality when ``q`` is the true posterior (Barber & Agakov 2003; used for design
    by Foster et al. 2019, *Variational Bayesian Optimal Experimental Design*, NeurIPS). Needs
    only simulations; training ``q`` by ascending the bound is maximum likelihood.

    Args:
        num_samples: joint samples per estimate.
        posterior: the flow ``q(theta | x)``; built by :meth:`init` when ``None``.
    """

    num_samples: int = eqx.field(static=True, default=512)
    posterior: ConditionalPosterior | None = None
    kind: ClassVar[BoundKind] = BoundKind.LOWER

    def __check_init__(self):
        check_positive_int("num_samples", self.num_samples, 2)

    def init(self, key, simulator, design):
        if self.posterior is not None:
            return self
        posterior = make_conditional_posterior(key, simulator, design)
        return eqx.tree_at(lambda e: e.posterior, self, posterior, is_leaf=lambda v: v is None)

    def estimate_with_stderr(self, key, simulator, design):
        if self.posterior is None:
            raise _missing("PosteriorBound", "posterior")
        theta, x = sample_joint(key, simulator, design, self.num_samples)
        terms = jax.vmap(
            lambda t, xi: self.posterior.log_prob(t, xi) - prior_log_prob(simulator.prior, t)
        )(theta, x)
        return mean_and_stderr(terms)


class _AbstractCritic(AbstractEIGEstimator):
    """Shared parts of the critic-based estimators: scores ``S_ij = T(theta_j, x_i)``."""

    num_samples: eqx.AbstractVar[int]
    critic: eqx.AbstractVar[Critic | None]
    width_size: eqx.AbstractVar[int]

    def init(self, key, simulator, design):
        if self.critic is not None:
            return self
        critic = make_critic(key, simulator, design, width_size=self.width_size)
        return eqx.tree_at(lambda e: e.critic, self, critic, is_leaf=lambda v: v is None)

    def _scores(self, key, simulator, design) -> Float[Array, "n n"]:
        if self.critic is None:
            raise _missing(type(self).__name__, "critic")
        theta, x = sample_joint(key, simulator, design, self.num_samples)
        return self.critic.score_matrix(theta, x)


def _off_diagonal(scores: Float[Array, "n n"]) -> Float[Array, " m"]:
    n = scores.shape[0]
    rows, cols = np.nonzero(~np.eye(n, dtype=bool))
    return scores[rows, cols]


class InfoNCE(_AbstractCritic):
    """The InfoNCE lower bound with a learned critic (for implicit simulators).

    ``I >= E[ T(theta_i, x_i) - log (1/N) sum_j exp T(theta_j, x_i) ]`` over a batch of ``N``
    joint samples; the bound never exceeds ``log N`` (van den Oord et al. 2018; Poole et al.
    2019, *On Variational Bounds of Mutual Information*, ICML; for experimental design:
    Kleinegesse & Gutmann 2021, *Gradient-based Bayesian Experimental Design for Implicit Models
    using Mutual Information Lower Bounds*; Ivanova et al. 2021, iDAD).

    Args:
        num_samples: batch size N (the bound saturates at ``log N``).
        critic: the critic; built by :meth:`init` when ``None``.
        width_size: hidden width of the default critic.
    """

    num_samples: int = eqx.field(static=True, default=256)
    critic: Critic | None = None
    width_size: int = eqx.field(static=True, default=64)
    kind: ClassVar[BoundKind] = BoundKind.LOWER

    def __check_init__(self):
        check_positive_int("num_samples", self.num_samples, 2)

    def estimate_with_stderr(self, key, simulator, design):
        scores = self._scores(key, simulator, design)
        n = scores.shape[0]
        terms = jnp.diag(scores) - jax.nn.logsumexp(scores, axis=1) + math.log(n)
        return mean_and_stderr(terms)


class NWJ(_AbstractCritic):
    """The NWJ (f-divergence) lower bound with a learned critic.

    ``I >= E_{p(theta, x)}[T] - e^{-1} E_{p(theta) p(x)}[exp T]`` (Nguyen, Wainwright & Jordan
    2010; for design: Kleinegesse & Gutmann 2021). Marginal pairs are the off-diagonal pairs of
    the batch. Unlike InfoNCE it does not saturate, at the price of a higher variance.

    Args: as :class:`InfoNCE`.
    """

    num_samples: int = eqx.field(static=True, default=256)
    critic: Critic | None = None
    width_size: int = eqx.field(static=True, default=64)
    kind: ClassVar[BoundKind] = BoundKind.LOWER

    def __check_init__(self):
        check_positive_int("num_samples", self.num_samples, 2)

    def estimate_with_stderr(self, key, simulator, design):
        scores = self._scores(key, simulator, design)
        joint = jnp.diag(scores)
        marginal = jnp.exp(_off_diagonal(scores) - 1.0)
        value = jnp.mean(joint) - jnp.mean(marginal)
        # Delta method, treating the joint and the marginal averages as independent.
        var = jnp.var(joint) / joint.shape[0] + jnp.var(marginal) / marginal.shape[0]
        return value, jnp.sqrt(jax.lax.stop_gradient(var))


class DonskerVaradhan(_AbstractCritic):
    """The Donsker-Varadhan bound, as trained by MINE.

    ``I >= E_{p(theta, x)}[T] - log E_{p(theta) p(x)}[exp T]`` (Belghazi et al. 2018, *Mutual
    Information Neural Estimation*, ICML; for design: Kleinegesse & Gutmann 2020, *Bayesian
    Experimental Design for Implicit Models by Mutual Information Neural Estimation*, ICML).
    Tighter than NWJ for the same critic; the minibatch estimate of the log term is slightly
    biased, which vanishes with ``num_samples``.

    Args: as :class:`InfoNCE`.
    """

    num_samples: int = eqx.field(static=True, default=256)
    critic: Critic | None = None
    width_size: int = eqx.field(static=True, default=64)
    kind: ClassVar[BoundKind] = BoundKind.LOWER

    def __check_init__(self):
        check_positive_int("num_samples", self.num_samples, 2)

    def estimate_with_stderr(self, key, simulator, design):
        scores = self._scores(key, simulator, design)
        joint = jnp.diag(scores)
        off = _off_diagonal(scores)
        log_mean_exp = jax.nn.logsumexp(off) - math.log(off.shape[0])
        value = jnp.mean(joint) - log_mean_exp
        rel = jnp.exp(off - log_mean_exp)
        var = jnp.var(joint) / joint.shape[0] + jnp.var(rel) / off.shape[0]
        return value, jnp.sqrt(jax.lax.stop_gradient(var))


class NeuralRatio(_AbstractCritic):
    """EIG as the mean log ratio learned by a classifier (neural ratio estimation).

    A classifier with logit ``T(theta, x)`` is trained to tell joint pairs from shuffled pairs
    with balanced classes, so at its optimum ``T = log p(x | theta, d) / p(x | d)``; the EIG is
    then ``E_{p(theta, x)}[T]`` (Hermans et al. 2020, *Likelihood-free MCMC with Amortized
    Approximate Ratio Estimators*, ICML; Kleinegesse & Gutmann 2019 use density ratios for
    design). A consistent estimate, not a bound: its error is the classifier's.

    Training ascends the negative cross-entropy in the critic, while the design gradient is the
    pathwise gradient of ``E[T]`` at a fixed critic (exact at the optimum, since the expected
    score of the likelihood vanishes).

    Args: as :class:`InfoNCE`.
    """

    num_samples: int = eqx.field(static=True, default=256)
    critic: Critic | None = None
    width_size: int = eqx.field(static=True, default=64)
    kind: ClassVar[BoundKind] = BoundKind.CONSISTENT

    def __check_init__(self):
        check_positive_int("num_samples", self.num_samples, 2)

    def estimate_with_stderr(self, key, simulator, design):
        scores = self._scores(key, simulator, design)
        return mean_and_stderr(jnp.diag(scores))

    def objective(self, key, simulator, design):
        frozen = jax.lax.stop_gradient(self)
        value = frozen.estimate(key, simulator, design)
        scores = self._scores(key, simulator, jax.lax.stop_gradient(design))
        log_likelihood = 0.5 * jnp.mean(jax.nn.log_sigmoid(jnp.diag(scores))) + 0.5 * jnp.mean(
            jax.nn.log_sigmoid(-_off_diagonal(scores))
        )
        return value + log_likelihood - jax.lax.stop_gradient(log_likelihood)
