"""Posteriors: the object every inference method returns."""

from __future__ import annotations

import abc
import math
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import JaxgenWarning, check_key
from .._jit import jit_for_cpu
from ..flows import AbstractConditionalDensity
from ..nn import AbstractEmbedding, Standardizer


class AbstractPosterior(eqx.Module):
    """The posterior interface: ``sample(key, x_o, num_samples)`` and ``log_prob(theta, x_o)``."""

    @abc.abstractmethod
    def sample(
        self, key: PRNGKeyArray, x_o: Array, num_samples: int
    ) -> Float[Array, "num_samples d"]:
        """Draw ``num_samples`` parameter vectors from p(theta | x_o)."""

    @abc.abstractmethod
    def log_prob(self, theta: Float[Array, "*batch d"], x_o: Array) -> Float[Array, "*batch"]:
        """Log posterior density of ``theta`` given the observation ``x_o``."""


class ConditionalEstimator(eqx.Module):
    """A conditional density over standardized theta given an embedding of standardized x.

    ``log_prob(theta, x)`` works in the original units: the standardization's Jacobian is added.
    This is what NPE trains; it is also the shape of NLE's likelihood model with the roles swapped.
    """

    density: AbstractConditionalDensity
    embedding: AbstractEmbedding
    value_standardizer: Standardizer
    condition_standardizer: Standardizer

    def condition_features(self, x: Array) -> Array:
        """Embedding of ONE example ``x`` (in original units)."""
        return self.embedding(self.condition_standardizer(x))

    def log_prob_one(self, value: Float[Array, " d"], x: Array) -> Float[Array, ""]:
        z = self.value_standardizer(value)
        log_q = self.density._log_prob(z, self.condition_features(x))
        return log_q + self.value_standardizer.log_abs_det()

    def sample_given_features(
        self, key: PRNGKeyArray, features: Array, num_samples: int
    ) -> Float[Array, "num_samples d"]:
        z = self.density.sample(key, features, num_samples)
        return self.value_standardizer.inverse(z)


def _in_support(prior: dist.Distribution | None, theta: Array) -> Array:
    if prior is None:
        return jnp.ones(theta.shape[:-1], dtype=bool)
    return jnp.all(prior.support(theta), axis=-1) if prior.support.event_dim == 0 else (
        prior.support(theta)
    )


def _check_observation(x_o: Any, x_shape: tuple[int, ...]) -> Array:
    x_o = jnp.asarray(x_o, dtype=float)
    if x_o.shape != x_shape:
        if x_o.shape == (1, *x_shape):
            return x_o[0]
        raise ValueError(
            f"`x_o` must be ONE observation with the shape of a training simulation, {x_shape}, "
            f"got shape {x_o.shape}. For several observations, call `sample` once per "
            f"observation (or use `sample_batched`)."
        )
    if not bool(jnp.all(jnp.isfinite(x_o))):
        raise ValueError("`x_o` contains NaN or inf; the posterior is undefined there.")
    return x_o


class DirectPosterior(AbstractPosterior):
    """The posterior of neural posterior estimation: q(theta | x) sampled directly.

    Samples that fall outside the prior's support are rejected (the flow is unbounded, the
    prior may not be); the acceptance rate is measured while sampling and a
    :class:`~jaxgen.JaxgenWarning` is raised when it is low. ``log_prob`` returns the flow's
    density inside the support and ``-inf`` outside; pass a ``key`` to renormalise it by the
    estimated acceptance rate (the mass that leaked outside the support).
    """

    estimator: ConditionalEstimator
    prior: dist.Distribution | None
    x_shape: tuple[int, ...] = eqx.field(static=True)
    theta_dim: int = eqx.field(static=True)
    warn_acceptance: float = eqx.field(static=True, default=0.05)

    def _draw(self, key: PRNGKeyArray, features: Array, num: int) -> tuple[Array, Array]:
        theta = self.estimator.sample_given_features(key, features, num)
        return theta, _in_support(self.prior, theta)

    def sample(
        self,
        key: PRNGKeyArray,
        x_o: Array,
        num_samples: int,
        *,
        max_draws: int | None = None,
        return_acceptance: bool = False,
    ) -> Float[Array, "num_samples d"] | tuple[Array, float]:
        """Draw ``num_samples`` samples from the posterior at ``x_o``.

        Args:
            key: PRNG key.
            x_o: one observation, with the shape of one training simulation.
            num_samples: number of samples.
            max_draws: give up after this many flow samples (default ``1000 * num_samples``):
                an acceptance rate that low means the posterior estimate puts its mass outside
                the prior.
            return_acceptance: also return the measured acceptance rate.
        """
        key = check_key(key)
        x_o = _check_observation(x_o, self.x_shape)
        features = _features(self.estimator, x_o)
        max_draws = 1000 * num_samples if max_draws is None else max_draws
        batch = _round_up(num_samples)
        kept, total_kept, total_drawn = [], 0, 0
        while total_kept < num_samples:
            if total_drawn >= max_draws:
                raise RuntimeError(
                    f"Only {total_kept} of {num_samples} posterior samples fell inside the prior's "
                    f"support after {total_drawn} draws (acceptance "
                    f"{total_kept / max(total_drawn, 1):.2e}). The estimate puts nearly all its "
                    f"mass outside the prior: x_o may be far from the training simulations "
                    f"(check with a misspecification test), or training failed."
                )
            key, k = jax.random.split(key)
            theta, ok = _draw_jit(self, k, features, batch)
            ok = np.asarray(ok)
            total_drawn += batch
            total_kept += int(ok.sum())
            kept.append(np.asarray(theta)[ok])
            acc = total_kept / total_drawn
            # Size the next batch from the measured acceptance so few rounds are needed.
            need = num_samples - total_kept
            batch = _round_up(int(min(max_draws, need / max(acc, 1e-3) * 1.2 + 16)))
        samples = jnp.asarray(np.concatenate(kept)[:num_samples])
        acceptance = total_kept / total_drawn
        if acceptance < self.warn_acceptance:
            warnings.warn(
                f"Only {100 * acceptance:.2g}% of the posterior samples fell inside the prior's "
                f"support and were kept. The estimate leaks mass outside the prior; train with "
                f"more simulations, or check that x_o resembles the training data.",
                JaxgenWarning,
                stacklevel=2,
            )
        return (samples, acceptance) if return_acceptance else samples

    def sample_batched(
        self, key: PRNGKeyArray, xs: Array, num_samples: int, *, max_rounds: int = 50
    ) -> Float[Array, "n num_samples d"]:
        """``num_samples`` posterior samples for each of many observations ``xs`` (n, *x_shape).

        Used by calibration diagnostics; rejection outside the prior is applied per observation.
        """
        key = check_key(key)
        xs = jnp.asarray(xs, dtype=float)
        n = xs.shape[0]
        features = jax.vmap(self.estimator.condition_features)(xs)
        out = np.zeros((n, num_samples, self.theta_dim), dtype=np.float32)
        filled = np.zeros(n, dtype=int)
        draw = max(num_samples, 8)
        for _ in range(max_rounds):
            todo = np.nonzero(filled < num_samples)[0]
            if todo.size == 0:
                break
            key, k = jax.random.split(key)
            keys = jax.random.split(k, todo.size)
            theta, ok = _draw_many_jit(self, keys, features[todo], draw)
            theta, ok = np.asarray(theta), np.asarray(ok)
            for row, i in enumerate(todo):
                good = theta[row][ok[row]]
                take = min(num_samples - filled[i], good.shape[0])
                out[i, filled[i] : filled[i] + take] = good[:take]
                filled[i] += take
            draw = min(draw * 2, 64 * num_samples)
        if np.any(filled < num_samples):
            bad = int(np.sum(filled < num_samples))
            raise RuntimeError(
                f"{bad} observations did not get {num_samples} posterior samples inside the "
                f"prior's support: the estimate puts almost no mass there."
            )
        return jnp.asarray(out)

    def log_prob(
        self,
        theta: Float[Array, "*batch d"],
        x_o: Array,
        *,
        key: PRNGKeyArray | None = None,
        num_acceptance_samples: int = 10_000,
    ) -> Float[Array, "*batch"]:
        """log q(theta | x_o), ``-inf`` outside the prior's support.

        With ``key``, the density is renormalised by the estimated acceptance rate (from
        ``num_acceptance_samples`` draws) so that it integrates to one over the support.
        """
        x_o = _check_observation(x_o, self.x_shape)
        theta = jnp.asarray(theta, dtype=float)
        if theta.ndim == 0 or theta.shape[-1] != self.theta_dim:
            raise ValueError(
                f"`theta` must have shape (*batch, {self.theta_dim}), got shape {theta.shape}."
            )
        log_p = _log_prob_jit(self, theta.reshape(-1, self.theta_dim), x_o).reshape(
            theta.shape[:-1]
        )
        if key is not None:
            features = _features(self.estimator, x_o)
            _, ok = _draw_jit(self, check_key(key), features, num_acceptance_samples)
            log_p = log_p - jnp.log(jnp.maximum(jnp.mean(ok), 1.0 / num_acceptance_samples))
        return log_p


def _round_up(n: int) -> int:
    """Round batch sizes up to a power of two so that the sampler compiles a few shapes only."""
    return 1 << max(int(math.ceil(math.log2(max(n, 1)))), 4)


@jit_for_cpu(quick_compile=True)
def _features(estimator: ConditionalEstimator, x_o: Array) -> Array:
    return estimator.condition_features(x_o)


@jit_for_cpu(quick_compile=True)
def _draw_jit(posterior: DirectPosterior, key, features, num: int):
    return posterior._draw(key, features, num)


@jit_for_cpu
def _draw_many_jit(posterior: DirectPosterior, keys, features, num: int):
    return jax.vmap(lambda k, f: posterior._draw(k, f, num))(keys, features)


@jit_for_cpu(quick_compile=True)
def _log_prob_jit(posterior: DirectPosterior, theta, x_o):
    log_q = jax.vmap(lambda t: posterior.estimator.log_prob_one(t, x_o))(theta)
    return jnp.where(_in_support(posterior.prior, theta), log_q, -jnp.inf)
