"""Sequential rounds for one observation, truncated priors, and marginal estimation."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import JaxgenWarning, check_flat_prior, check_key
from ..nn import AbstractEmbedding, IdentityEmbedding, Standardizer
from ..simulators import simulate
from ..train import fit
from .nle import nle
from .npe import default_density_estimator, prepare_training_data
from .nre import nre
from .posterior import ConditionalEstimator, DirectPosterior


@dataclasses.dataclass(frozen=True)
class RoundsResult:
    """The output of a sequential method.

    Attributes:
        posterior: the posterior after the last round.
        posteriors: the posterior after each round.
        num_simulations: cumulative simulations after each round.
        theta, x: all simulations used.
    """

    posterior: Any
    posteriors: list
    num_simulations: list[int]
    theta: Array
    x: Array


def atomic_loss(
    model: ConditionalEstimator,
    theta: Array,
    x: Array,
    prior: dist.Distribution,
    num_atoms: int,
) -> Float[Array, ""]:
    """The atomic APT loss (Greenberg, Nonnenmacher & Macke 2019, "Automatic posterior
    transformation", ICML).

    For each ``x_i`` the proposal posterior is q(theta | x_i) / p(theta) renormalised over
    ``num_atoms`` atoms: its own ``theta_i`` and the next rows of the (shuffled) minibatch.
    Minimising it gives the true posterior whatever proposal the data came from.
    """
    k = min(num_atoms, theta.shape[0])
    atoms = jnp.stack([jnp.roll(theta, -j, axis=0) for j in range(k)], axis=1)  # (n, k, d)
    log_prior = prior.log_prob(atoms)

    def row(atoms_i, x_i):
        features = model.condition_features(x_i)
        z = jax.vmap(model.value_standardizer)(atoms_i)
        return jax.vmap(lambda zz: model.density._log_prob(zz, features))(z)

    logits = jax.vmap(row)(atoms, x) - log_prior
    return -jnp.mean(jax.nn.log_softmax(logits, axis=1)[:, 0])


def truncated_prior_sample(
    key: PRNGKeyArray,
    posterior: Any,
    x_o: Array,
    prior: dist.Distribution,
    num: int,
    *,
    epsilon: float = 1e-4,
    num_posterior_samples: int = 10_000,
    max_draws: int = 10_000_000,
) -> Float[Array, "num d"]:
    """Draws from the prior restricted to the ``1 - epsilon`` highest-posterior region.

    The region is where ``posterior.log_prob(theta, x_o)`` exceeds its ``epsilon`` quantile over
    posterior samples (Deistler et al. 2022, "Truncated proposals for scalable and hassle-free
    simulation-based inference", NeurIPS); prior draws outside it are rejected. Unnormalised log
    densities (NLE, NRE) work the same, since only the ordering matters.
    """
    k_post, k_prior = jax.random.split(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        samples = posterior.sample(k_post, x_o, num_posterior_samples)
    threshold = float(jnp.quantile(posterior.log_prob(samples, x_o), epsilon))
    kept, drawn, total = [], 0, 0
    batch = max(4 * num, 1024)
    while total < num:
        if drawn >= max_draws:
            raise RuntimeError(
                f"The truncated region holds less than {total / max(drawn, 1):.1e} of the prior "
                f"mass after {drawn} draws; lower the truncation (larger `epsilon`) or use "
                f"non-truncated rounds."
            )
        k_prior, k = jax.random.split(k_prior)
        cand = prior.sample(k, (batch,))
        ok = np.asarray(posterior.log_prob(cand, x_o) >= threshold)
        kept.append(np.asarray(cand)[ok])
        total += int(ok.sum())
        drawn += batch
    return jnp.asarray(np.concatenate(kept)[:num])


def _simulate(key, simulator, theta):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        return simulate(key, simulator, theta=theta, invalid="drop")


def _check_rounds(num_rounds, num_simulations):
    if isinstance(num_rounds, bool) or not isinstance(num_rounds, int) or num_rounds < 1:
        raise ValueError(f"`num_rounds` must be a positive int, got {num_rounds!r}.")
    sims = [num_simulations] * num_rounds if np.ndim(num_simulations) == 0 else list(
        num_simulations
    )
    if len(sims) != num_rounds or any(int(n) < 1 for n in sims):
        raise ValueError(
            f"`num_simulations` must be a positive int (per round) or one count per round "
            f"({num_rounds} values), got {num_simulations!r}."
        )
    return [int(n) for n in sims]


def _rounds(key, simulator, x_o, num_rounds, num_simulations, truncate, train, epsilon):
    key = check_key(key)
    sims = _check_rounds(num_rounds, num_simulations)
    prior = simulator.prior
    thetas, xs, posteriors, counts = [], [], [], []
    posterior = None
    for r, n in enumerate(sims):
        key, k_prop, k_sim, k_train = jax.random.split(key, 4)
        if posterior is None:
            theta = prior.sample(k_prop, (n,))
        elif truncate:
            theta = truncated_prior_sample(k_prop, posterior, x_o, prior, n, epsilon=epsilon)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", JaxgenWarning)
                theta = posterior.sample(k_prop, x_o, n)
        theta, x = _simulate(k_sim, simulator, theta)
        thetas.append(theta)
        xs.append(x)
        all_theta, all_x = jnp.concatenate(thetas), jnp.concatenate(xs)
        posterior = train(k_train, all_theta, all_x, r, posterior)
        posteriors.append(posterior)
        counts.append(int(all_theta.shape[0]))
    return RoundsResult(posterior, posteriors, counts, all_theta, all_x)


def sequential_npe(
    key: PRNGKeyArray,
    simulator: Any,
    x_o: Array,
    *,
    num_rounds: int = 3,
    num_simulations: int | Sequence[int] = 1000,
    truncate: bool = False,
    epsilon: float = 1e-4,
    num_atoms: int = 10,
    density_estimator: Callable | None = None,
    embedding: AbstractEmbedding | None = None,
    learning_rate: float = 5e-4,
    batch_size: int = 200,
    max_epochs: int = 500,
    patience: int = 20,
    progress: bool = False,
) -> RoundsResult:
    """Sequential neural posterior estimation for one observation ``x_o``.

    Round 1 simulates from the prior. Later rounds simulate from the current posterior and
    train on all simulations with the atomic APT loss (:func:`atomic_loss`; Greenberg et al.
    2019), or, with ``truncate=True``, from the prior truncated to the current posterior's
    ``1 - epsilon`` highest-density region, trained with the plain NPE loss (TSNPE; Deistler et
    al. 2022). The estimator is trained further from round to round.

    Args:
        key: PRNG key.
        simulator: an :class:`~jaxgen.simulators.AbstractSimulator`.
        x_o: the observation.
        num_rounds: number of rounds.
        num_simulations: simulations per round (an int or one count per round).
        truncate: truncated rounds instead of atomic proposal correction.
        epsilon: mass outside the truncated region.
        num_atoms: atoms in the APT loss.
        density_estimator, embedding: as in :func:`~jaxgen.sbi.npe`.
        learning_rate, batch_size, max_epochs, patience, progress: passed to
            :func:`jaxgen.train.fit`.

    Returns:
        A :class:`RoundsResult`; ``.posterior`` is a :class:`~jaxgen.sbi.DirectPosterior`.

    Example:
        ```python
        result = jg.sbi.sequential_npe(key, sim, x_o, num_rounds=3, num_simulations=1000)
        samples = result.posterior.sample(key, x_o, 1000)
        ```
    """
    prior = simulator.prior
    d = check_flat_prior(prior)
    x_shape = tuple(simulator.x_shape())
    fit_kw = {"learning_rate": learning_rate, "batch_size": batch_size,
              "max_epochs": max_epochs, "patience": patience, "progress": progress}

    def train(k, theta, x, r, previous):
        theta, x = prepare_training_data(theta, x, prior, context=" of the simulations")
        k_model, k_fit = jax.random.split(k)
        if previous is None:
            emb = embedding if embedding is not None else IdentityEmbedding(x_shape)
            factory = density_estimator or default_density_estimator
            estimator = ConditionalEstimator(
                factory(k_model, d, emb.out_size), emb, Standardizer.from_data(theta),
                Standardizer.from_data(x),
            )
        else:
            estimator = previous.estimator
        if r == 0 or truncate:
            def loss_fn(m, batch, kk):
                return -jnp.mean(jax.vmap(m.log_prob_one)(*batch))
        else:
            def loss_fn(m, batch, kk):
                return atomic_loss(m, batch[0], batch[1], prior, num_atoms)
        estimator, _ = fit(k_fit, estimator, loss_fn, (theta, x), **fit_kw)
        return DirectPosterior(estimator, prior, x_shape, d)

    return _rounds(key, simulator, x_o, num_rounds, num_simulations, truncate, train, epsilon)


def sequential_nle(
    key: PRNGKeyArray,
    simulator: Any,
    x_o: Array,
    *,
    num_rounds: int = 3,
    num_simulations: int | Sequence[int] = 1000,
    truncate: bool = False,
    epsilon: float = 1e-4,
    **nle_options: Any,
) -> RoundsResult:
    """Sequential neural likelihood (Papamakarios et al. 2019): each round simulates from the
    current posterior (or the truncated prior with ``truncate=True``) and refits the
    likelihood on all simulations. The likelihood does not depend on the proposal, so no
    correction is needed. ``nle_options`` go to :func:`~jaxgen.sbi.nle`."""
    prior = simulator.prior

    def train(k, theta, x, r, previous):
        return nle(k, theta, x, prior=prior, **nle_options)

    return _rounds(key, simulator, x_o, num_rounds, num_simulations, truncate, train, epsilon)


def sequential_nre(
    key: PRNGKeyArray,
    simulator: Any,
    x_o: Array,
    *,
    num_rounds: int = 3,
    num_simulations: int | Sequence[int] = 1000,
    truncate: bool = False,
    epsilon: float = 1e-4,
    **nre_options: Any,
) -> RoundsResult:
    """Sequential neural ratio estimation (Hermans et al. 2020; with ``truncate=True`` the
    truncated rounds of swyft's TMNRE, Miller et al. 2021).

    With simulations from a proposal, the classifier learns ``p(x | theta) / p~(x)``; the
    denominator does not depend on ``theta``, so ``prior * ratio`` is still the posterior.
    ``nre_options`` go to :func:`~jaxgen.sbi.nre`."""
    prior = simulator.prior

    def train(k, theta, x, r, previous):
        return nre(k, theta, x, prior=prior, **nre_options)

    return _rounds(key, simulator, x_o, num_rounds, num_simulations, truncate, train, epsilon)


def marginal_prior(prior: dist.Distribution, indices: Sequence[int]) -> dist.Distribution:
    """The marginal of a prior over the coordinates ``indices``.

    Supports independent priors (``Base(...).to_event(1)`` with elementwise parameters) and
    multivariate normals.
    """
    d = check_flat_prior(prior)
    idx = np.asarray(indices, dtype=int)
    if idx.ndim != 1 or idx.size == 0 or np.any(idx < 0) or np.any(idx >= d):
        raise ValueError(f"`indices` must be distinct coordinates in [0, {d}), got {indices!r}.")
    if isinstance(prior, dist.MultivariateNormal):
        return dist.MultivariateNormal(
            prior.loc[idx], covariance_matrix=prior.covariance_matrix[np.ix_(idx, idx)]
        )
    if isinstance(prior, dist.Independent) and prior.base_dist.batch_shape == (d,):
        base = prior.base_dist
        params = {
            name: jnp.broadcast_to(getattr(base, name), (d,))[idx]
            for name in base.arg_constraints
            if hasattr(base, name)
        }
        try:
            return type(base)(**params).to_event(1)
        except TypeError:
            pass
    raise TypeError(
        f"Cannot take the marginal of a {type(prior).__name__} prior automatically. Build the "
        f"marginal prior yourself and call the estimator on `theta[:, indices]`."
    )


def marginal_posteriors(
    key: PRNGKeyArray,
    theta: Float[Array, "n d"],
    x: Array,
    *,
    prior: dist.Distribution,
    subsets: Sequence[Sequence[int]],
    method: Callable = nre,
    **options: Any,
) -> dict[tuple[int, ...], Any]:
    """One estimator per parameter subset; the other parameters are marginalised automatically,
    because each estimator only ever sees its own columns of ``theta`` (the marginal
    estimation of swyft, Miller et al. 2021).

    Args:
        key: PRNG key.
        theta, x: simulations.
        prior: the joint prior.
        subsets: e.g. ``[(0,), (1,), (0, 1)]``.
        method: ``jg.sbi.nre`` (default), ``jg.sbi.npe`` or ``jg.sbi.nle``.
        options: passed to ``method``.

    Returns:
        ``{subset: posterior}``, each over its subset's coordinates.
    """
    key = check_key(key)
    theta = jnp.asarray(theta)
    out = {}
    for subset, k in zip(subsets, jax.random.split(key, len(subsets))):
        idx = tuple(int(i) for i in subset)
        out[idx] = method(k, theta[:, list(idx)], x, prior=marginal_prior(prior, idx), **options)
    return out

