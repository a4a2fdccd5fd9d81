"""Neural posterior estimation (amortized)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import as_2d, check_flat_prior, check_key, check_same_length, drop_nonfinite
from .._jit import jit_for_cpu
from ..flows import AbstractConditionalDensity, neural_spline_flow
from ..nn import AbstractEmbedding, IdentityEmbedding, Standardizer
from ..train import History, fit
from .posterior import ConditionalEstimator, DirectPosterior, _in_support

DensityFactory = Callable[[PRNGKeyArray, int, int], AbstractConditionalDensity]


def default_density_estimator(key: PRNGKeyArray, dim: int, cond_dim: int):
    """The default conditional density: a rational-quadratic spline coupling flow.

    Five layers, two hidden layers of 50 units, 8 bins on [-5, 5] (in standardized units; beyond
    that the spline is the identity), as in sbi's ``nsf`` default.
    """
    return neural_spline_flow(key, dim, cond_dim=cond_dim, num_layers=5, hidden_size=50)


def prepare_training_data(
    theta: Any, x: Any, prior: dist.Distribution | None, *, context: str = ""
) -> tuple[Array, Array]:
    """Validate and clean a simulated dataset: shapes, prior match, NaN/inf rows dropped."""
    theta = jnp.asarray(theta)
    d = check_flat_prior(prior) if prior is not None else None
    theta = as_2d(theta, "theta", dim=d, what=" matching the prior's event shape" if d else "")
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError("`x` must have one row per simulation, got a scalar.")
    if x.ndim == 1:
        x = x[:, None]
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    check_same_length(theta=theta, x=x)
    (theta, x), _ = drop_nonfinite(theta, x, context=context)
    if prior is not None:
        outside = int(jnp.sum(~_in_support(prior, theta)))
        if outside == theta.shape[0]:
            raise ValueError(
                f"None of the {outside} theta rows lie inside the prior's support: the prior "
                f"does not match the simulations. Pass the prior the simulations were drawn from."
            )
    return theta, x


def npe(
    key: PRNGKeyArray,
    theta: Float[Array, "n d"],
    x: Float[Array, "n ..."],
    *,
    prior: dist.Distribution | None = None,
    density_estimator: DensityFactory | None = None,
    embedding: AbstractEmbedding | None = None,
    standardize: bool = True,
    learning_rate: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 500,
    validation_fraction: float = 0.1,
    patience: int = 20,
    progress: bool = False,
    return_history: bool = False,
) -> DirectPosterior | tuple[DirectPosterior, History]:
    """Amortized neural posterior estimation (Papamakarios & Murray 2016; Greenberg et al. 2019).

    Trains a conditional density q(theta | x) by maximum likelihood on simulated pairs
    ``(theta, x)`` drawn from the prior and the simulator; the result is a posterior for any
    observation ``x_o`` without further training.

    Args:
        key: PRNG key (training is bit-for-bit reproducible for a fixed key).
        theta: parameters, shape ``(n, d)``.
        x: simulations, shape ``(n, ...)``; rows with NaN/inf are dropped with a warning.
        prior: the prior ``theta`` was drawn from (numpyro distribution with event shape
            ``(d,)``). Posterior samples outside its support are rejected.
        density_estimator: ``f(key, dim, cond_dim) -> AbstractConditionalDensity``; default a
            neural spline flow (:func:`default_density_estimator`). E.g.
            ``lambda k, d, c: jg.flows.maf(k, d, cond_dim=c)``.
        embedding: a network mapping one (standardized) ``x`` to features, trained jointly
            (e.g. ``jg.nn.CNN1dEmbedding(x.shape[1:], key=k)`` for time series). Default: the
            flattened ``x``.
        standardize: z-score theta and x with the training-set statistics.
        learning_rate, batch_size, max_epochs, validation_fraction, patience, progress: passed
            to :func:`jaxgen.train.fit`. The defaults (Adam at 1e-3, minibatches of 256, 10%
            validation, patience 20) reached the same or better validation loss and C2ST than
            sbi's 5e-4 / 200 in fewer epochs on the two-moons and Gaussian-linear benchmarks.
        return_history: also return the training :class:`~jaxgen.train.History`.

    Returns:
        A :class:`DirectPosterior` (and the history when asked).

    Example:
        ```python
        sim = jg.simulators.TwoMoons()
        theta, x = jg.simulate(key, sim, 10_000)
        posterior = jg.sbi.npe(key, theta, x, prior=sim.prior)
        samples = posterior.sample(key, x_o, 1_000)
        ```
    """
    key = check_key(key)
    theta, x = prepare_training_data(theta, x, prior, context=" of the NPE training data")
    d = theta.shape[1]
    x_shape = tuple(x.shape[1:])
    k_emb, k_flow, k_fit = jax.random.split(key, 3)
    if embedding is None:
        embedding = IdentityEmbedding(x_shape)
    else:
        try:
            out = jax.eval_shape(embedding, jax.ShapeDtypeStruct(x_shape, x.dtype))
        except Exception as err:
            raise ValueError(
                f"The embedding network cannot take one simulation of shape {x_shape}: {err}"
            ) from err
        if out.shape != (embedding.out_size,):
            raise ValueError(
                f"The embedding network must return a vector of size {embedding.out_size}, "
                f"returned shape {out.shape}."
            )
    factory = density_estimator or default_density_estimator
    # Built under one jit: initialising a flow eagerly compiles a small program per weight shape.
    estimator = jit_for_cpu(_build_estimator, quick_compile=True)(
        k_flow, factory, embedding, theta, x, d, x_shape, standardize
    )

    estimator, history = fit(
        k_fit,
        estimator,
        _npe_loss,
        (theta, x),
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_epochs=max_epochs,
        validation_fraction=validation_fraction,
        patience=patience,
        progress=progress,
    )
    posterior = DirectPosterior(estimator, prior, x_shape, d)
    return (posterior, history) if return_history else posterior




def _npe_loss(model: ConditionalEstimator, batch: tuple[Array, Array], key: PRNGKeyArray):
    """Negative log-likelihood of theta under q(theta | x); module level so compiles are shared."""
    t, xb = batch
    return -jnp.mean(jax.vmap(model.log_prob_one)(t, xb))


def _build_estimator(key, factory, embedding, theta, x, d, x_shape, standardize):
    density = factory(key, d, embedding.out_size)
    if standardize:
        theta_std, x_std = Standardizer.from_data(theta), Standardizer.from_data(x)
    else:
        theta_std = Standardizer(jnp.zeros(d), jnp.ones(d))
        x_std = Standardizer(jnp.zeros(x_shape), jnp.ones(x_shape))
    return ConditionalEstimator(density, embedding, theta_std, x_std)
