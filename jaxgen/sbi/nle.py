"""Neural likelihood estimation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ..flows import AbstractBijection, AbstractConditionalDensity
from ..nn import IdentityEmbedding, Standardizer
from ..train import History, fit
from .likelihood_posterior import AbstractLogLikelihood, LikelihoodPosterior
from .mcmc import AbstractSampler, MetropolisHastings
from .npe import default_density_estimator, prepare_training_data
from .posterior import ConditionalEstimator

DensityFactory = Callable[[PRNGKeyArray, int, int], AbstractConditionalDensity]


class ElementwiseLog(AbstractBijection):
    """``y = log x`` for every entry: maps positive simulations to the whole real line.

    As an ``x_transform`` of :func:`nle` it suits positive data with multiplicative
    (log-normal-like) noise, whose spread grows with the level: on the log scale the noise has a
    constant width and the flow has far less to learn. ``log|det dy/dx| = -sum log x``.
    """

    dim: int = eqx.field(static=True)
    cond_dim: None = eqx.field(static=True, default=None)

    def transform_and_log_det(self, x, condition=None):
        self._condition_vector(condition)
        y = jnp.log(self._check_vector(x, "x"))
        return y, -jnp.sum(y)

    def inverse_and_log_det(self, y, condition=None):
        self._condition_vector(condition)
        y = self._check_vector(y, "y")
        return jnp.exp(y), jnp.sum(y)


XTransform = AbstractBijection | Literal["log"] | None


class LikelihoodEstimator(AbstractLogLikelihood):
    """A conditional density q(x | theta) over the flattened simulation ``x``.

    With an ``x_transform`` y = f(x), the flow models y and the change of variables
    ``log q(x | theta) = log q_y(f(x) | theta) + log|det df/dx|`` keeps ``log q`` a normalised
    density of the ORIGINAL x.
    """

    estimator: ConditionalEstimator
    x_transform: AbstractBijection | None = None

    def __call__(self, theta, x):
        x = jnp.reshape(x, (-1,))
        if self.x_transform is None:
            return self.estimator.log_prob_one(x, theta)
        # The transform is fixed: training must not move any parameters it carries.
        transform = jax.tree_util.tree_map(
            lambda leaf: jax.lax.stop_gradient(leaf) if eqx.is_inexact_array(leaf) else leaf,
            self.x_transform,
        )
        y, log_det = transform.transform_and_log_det(x)
        return self.estimator.log_prob_one(y, theta) + log_det

    def sample(self, key: PRNGKeyArray, theta: Float[Array, " d"], num_samples: int) -> Array:
        """Draw ``num_samples`` flattened simulations from q(x | theta) (an emulator)."""
        features = self.estimator.condition_features(theta)
        y = self.estimator.sample_given_features(key, features, num_samples)
        if self.x_transform is None:
            return y
        return jax.vmap(self.x_transform.inverse)(y)

    def check_observations(self, x_o: Array) -> None:
        """Raise when an observation lies outside the domain of ``x_transform``."""
        if self.x_transform is None:
            return
        flat = jnp.reshape(x_o, (x_o.shape[0], -1))
        check_transformable(self.x_transform, flat, "`x_o`", "observations")


def _transform_requirement(transform: AbstractBijection) -> tuple[str, str]:
    """What the transform needs of x, and how to fix data that breaks it."""
    if isinstance(transform, ElementwiseLog):
        fix = ("Pass positive simulations (e.g. counts shifted by a constant, `x + 1`), or "
               "train without the log transform (`x_transform=None`).")
        return "every entry of x to be positive (x > 0)", fix
    return (f"x in the domain of {type(transform).__name__} (a finite image)",
            "Check the transform against the data, or train without it (`x_transform=None`).")


def check_transformable(
    transform: AbstractBijection, x_flat: Array, name: str, what: str
) -> Array:
    """``transform`` applied to every row of ``x_flat``; raise if any row maps to NaN/inf."""
    y = jax.vmap(transform.transform)(x_flat)
    bad = ~jnp.all(jnp.isfinite(y), axis=1)
    if bool(jnp.any(bad)):
        need, fix = _transform_requirement(transform)
        row = int(jnp.argmax(bad))
        raise ValueError(
            f"`x_transform={type(transform).__name__}` needs {need}, but {int(jnp.sum(bad))} of "
            f"{x_flat.shape[0]} {what} in {name} are not (the first, row {row}, has minimum "
            f"{float(jnp.min(x_flat[row])):.4g}). {fix}"
        )
    return y


def resolve_x_transform(x_transform: XTransform, dim: int) -> AbstractBijection | None:
    """``None``, ``"log"`` (an :class:`ElementwiseLog`) or any unconditional bijection of the
    flattened simulation, checked at construction."""
    if x_transform is None:
        return None
    if isinstance(x_transform, str):
        if x_transform != "log":
            raise ValueError(
                f"`x_transform` must be None, 'log' or an unconditional "
                f"`jg.flows.AbstractBijection`, got the string {x_transform!r}."
            )
        return ElementwiseLog(dim)
    if not isinstance(x_transform, AbstractBijection):
        raise TypeError(
            f"`x_transform` must be None, 'log' or an unconditional `jg.flows.AbstractBijection`"
            f" of the flattened simulation, got {type(x_transform).__name__}."
        )
    if x_transform.dim != dim or x_transform.cond_dim is not None:
        raise ValueError(
            f"`x_transform` must be an unconditional bijection (cond_dim=None) of the flattened "
            f"simulation, dim={dim}; got dim={x_transform.dim}, cond_dim={x_transform.cond_dim}."
        )
    return x_transform


def build_likelihood_estimator(
    key: PRNGKeyArray,
    theta: Array,
    x_flat: Array,
    density_estimator: DensityFactory | None,
    standardize: bool,
    x_transform: XTransform = None,
) -> LikelihoodEstimator:
    """An untrained q(x | theta) with standardization fitted to the (transformed) data."""
    d, dx = theta.shape[1], x_flat.shape[1]
    transform = resolve_x_transform(x_transform, dx)
    y_flat = x_flat if transform is None else check_transformable(
        transform, x_flat, "`x`", "training simulations"
    )
    factory = density_estimator or default_density_estimator
    density = factory(key, dx, d)
    if standardize:
        x_std, t_std = Standardizer.from_data(y_flat), Standardizer.from_data(theta)
    else:
        x_std = Standardizer(jnp.zeros(dx), jnp.ones(dx))
        t_std = Standardizer(jnp.zeros(d), jnp.ones(d))
    estimator = ConditionalEstimator(density, IdentityEmbedding((d,)), x_std, t_std)
    return LikelihoodEstimator(estimator, transform)


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
    x_transform: XTransform = None,
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
        standardize: z-score theta and x (x after ``x_transform``).
        x_transform: an invertible map of the flattened simulation applied before the flow:
            ``"log"`` (:class:`ElementwiseLog`, for positive data with multiplicative noise) or
            any unconditional :class:`~jaxgen.flows.AbstractBijection` ``y = f(x)``. Its
            log-Jacobian is added, so the likelihood stays a normalised density of the original
            ``x`` (and emulator samples come back in the original units). It is fixed, not
            trained. Training data and observations outside its domain raise an error.
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
    model = build_likelihood_estimator(
        k_model, theta, x_flat, density_estimator, standardize, x_transform
    )
    model, history = fit(
        k_fit, model, likelihood_loss, (theta, x_flat), learning_rate=learning_rate,
        batch_size=batch_size, max_epochs=max_epochs, validation_fraction=validation_fraction,
        patience=patience, progress=progress,
    )
    posterior = LikelihoodPosterior(
        model, prior, x_shape, theta.shape[1], sampler or MetropolisHastings()
    )
    return (posterior, history) if return_history else posterior
