"""Neural likelihood estimation."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ..flows import AbstractConditionalDensity
from ..nn import IdentityEmbedding, Standardizer
from ..train import History, fit
from .likelihood_posterior import AbstractLogLikelihood, LikelihoodPosterior
from .mcmc import AbstractSampler, MetropolisHastings
from .npe import default_density_estimator, prepare_training_data
from .posterior import ConditionalEstimator

DensityFactory = Callable[[PRNGKeyArray, int, int], AbstractConditionalDensity]


class LikelihoodEstimator(AbstractLogLikelihood):
    """A conditional density q(x | theta) over the flattened simulation ``x``."""

    estimator: ConditionalEstimator

    def __call__(self, theta, x):
        return self.estimator.log_prob_one(jnp.reshape(x, (-1,)), theta)

    def sample(self, key: PRNGKeyArray, theta: Float[Array, " d"], num_samples: int) -> Array:
        """Draw ``num_samples`` flattened simulations from q(x | theta) (an emulator)."""
        features = self.estimator.condition_features(theta)
        return self.estimator.sample_given_features(key, features, num_samples)


def build_likelihood_estimator(
    key: PRNGKeyArray,
    theta: Array,
    x_flat: Array,
    density_estimator: DensityFactory | None,
    standardize: bool,
) -> LikelihoodEstimator:
    """An untrained q(x | theta) with standardization fitted to the data."""
    d, dx = theta.shape[1], x_flat.shape[1]
    factory = density_estimator or default_density_estimator
    density = factory(key, dx, d)
    if standardize:
        x_std, t_std = Standardizer.from_data(x_flat), Standardizer.from_data(theta)
    else:
        x_std = Standardizer(jnp.zeros(dx), jnp.ones(dx))
        t_std = Standardizer(jnp.zeros(d), jnp.ones(d))
    return LikelihoodEstimator(ConditionalEstimator(density, IdentityEmbedding((d,)), x_std, t_std))


def likelihood_loss(model: LikelihoodEstimator, batch, key) -> Float[Array, ""]:
    """Mean negative log-likelihood of a minibatch ``(theta, x)``."""
    t, xb = batch
    return -jnp.mean(jax.vmap(model)(t, xb))


def nle(
    key: PRNGKeyArray,
    theta: Float[Array, "n d"],
    x: Float[Array, "n ..."],
    *,
    prior: dist.Distribution,
    density_estimator: DensityFactory | None = None,
    sampler: AbstractSampler | None = None,
    standardize: bool = True,
    learning_rate: float = 5e-4,
    batch_size: int = 200,
    max_epochs: int = 500,
    validation_fraction: float = 0.1,
    patience: int = 20,
    progress: bool = False,
    return_history: bool = False,
) -> LikelihoodPosterior | tuple[LikelihoodPosterior, History]:
    """Neural likelihood estimation (Papamakarios, Sterratt & Murray 2019, "Sequential neural
    likelihood", AISTATS).

    Trains a conditional flow q(x | theta) on simulated pairs by maximum likelihood; the
    posterior at ``x_o`` is sampled by MCMC on ``log q(x_o | theta) + log p(theta)``. Several
    i.i.d. observations may be passed as ``x_o``: their log-likelihoods add, so one trained
    likelihood serves any number of trials.

    Args:
        key: PRNG key.
        theta: parameters ``(n, d)``; x: simulations ``(n, ...)`` (flattened for the flow).
        prior: the prior the parameters were drawn from (also the MCMC prior).
        density_estimator: ``f(key, dim, cond_dim) -> AbstractConditionalDensity`` (default a
            neural spline flow).
        sampler: how to sample the posterior (default :class:`~jaxgen.sbi.MetropolisHastings`).
        standardize: z-score theta and x.
        learning_rate, batch_size, max_epochs, validation_fraction, patience, progress: passed
            to :func:`jaxgen.train.fit`.
        return_history: also return the training history.

    Returns:
        A :class:`~jaxgen.sbi.LikelihoodPosterior`.

    Example:
        ```python
        posterior = jg.sbi.nle(key, theta, x, prior=sim.prior)
        samples = posterior.sample(key, x_o, 10_000)
        ```
    """
    key = check_key(key)
    theta, x = prepare_training_data(theta, x, prior, context=" of the NLE training data")
    x_shape = tuple(x.shape[1:])
    x_flat = x.reshape(x.shape[0], math.prod(x_shape))
    k_model, k_fit = jax.random.split(key)
    model = build_likelihood_estimator(k_model, theta, x_flat, density_estimator, standardize)
    model, history = fit(
        k_fit, model, likelihood_loss, (theta, x_flat), learning_rate=learning_rate,
        batch_size=batch_size, max_epochs=max_epochs, validation_fraction=validation_fraction,
        patience=patience, progress=progress,
    )
    posterior = LikelihoodPosterior(
        model, prior, x_shape, theta.shape[1], sampler or MetropolisHastings()
    )
    return (posterior, history) if return_history else posterior
