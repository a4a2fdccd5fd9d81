"""Learned parts of EIG estimators: critics T(theta, x) and conditional densities q(theta | x)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..flows import AbstractConditionalDensity, neural_spline_flow
from ..nn import MLP, Standardizer
from ..simulators import AbstractSimulator
from .base import sample_joint

# Pilot simulations used to fix the standardization of theta and x.
_NUM_PILOT = 1024


def pilot_standardizers(
    key: PRNGKeyArray, simulator: AbstractSimulator, design: Any
) -> tuple[Standardizer, Standardizer, int]:
    """Standardizers for theta and flattened x from pilot simulations at ``design``."""
    theta, x = sample_joint(key, simulator, design, _NUM_PILOT)
    x = x.reshape(_NUM_PILOT, -1)
    finite = jnp.all(jnp.isfinite(x), axis=1)
    weights = finite / jnp.maximum(finite.sum(), 1)
    x0 = jnp.where(finite[:, None], x, 0.0)
    mean = weights @ x0
    std = jnp.sqrt(weights @ (x0 - mean) ** 2)
    return Standardizer.from_data(theta), Standardizer(mean, std), x.shape[1]


class Critic(eqx.Module):
    """A separable critic ``T(theta, x) = g(theta) . h(x)`` on standardized inputs.

    Used by the likelihood-free mutual-information bounds (InfoNCE, NWJ, Donsker-Varadhan) and by
    the neural-ratio estimate, where at the optimum ``T`` is (up to a constant) the log ratio
    ``log p(x | theta, d) / p(x | d)``. The separable form scores a batch of ``N`` pairs against
    each other with ``2 N`` network calls and one matrix product instead of ``N^2`` calls
    (Poole et al. 2019, *On Variational Bounds of Mutual Information*, ICML).
    """

    theta_net: MLP
    x_net: MLP
    theta_scaler: Standardizer
    x_scaler: Standardizer

    def theta_features(self, theta: Float[Array, " d"]) -> Float[Array, " k"]:
        """``g(theta)`` for one parameter vector."""
        return self.theta_net(self.theta_scaler(theta))

    def x_features(self, x: Array) -> Float[Array, " k"]:
        """``h(x)`` for one outcome."""
        return self.x_net(self.x_scaler(jnp.ravel(x)))

    def __call__(self, theta: Float[Array, " d"], x: Array) -> Float[Array, ""]:
        return jnp.dot(self.theta_features(theta), self.x_features(x))

    def score_matrix(self, theta: Float[Array, "n d"], x: Array) -> Float[Array, "n n"]:
        """``S[i, j] = T(theta_j, x_i)`` for a batch of pairs."""
        g = jax.vmap(self.theta_features)(theta)
        h = jax.vmap(self.x_features)(x)
        return h @ g.T


def make_critic(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    design: Any,
    *,
    width_size: int = 64,
    depth: int = 2,
    feature_size: int = 32,
) -> Critic:
    """A :class:`Critic` sized and standardized for ``simulator`` at ``design``."""
    k_pilot, k_theta, k_x = jax.random.split(key, 3)
    theta_scaler, x_scaler, x_size = pilot_standardizers(k_pilot, simulator, design)
    theta_net = MLP(simulator.theta_dim, feature_size, width_size, depth, key=k_theta)
    x_net = MLP(x_size, feature_size, width_size, depth, key=k_x)
    return Critic(theta_net, x_net, theta_scaler, x_scaler)


class ConditionalPosterior(eqx.Module):
    """``q(theta | x)``: a conditional flow over standardized theta given standardized x.

    The Barber-Agakov bound uses it as the variational posterior and adaptive contrastive
    estimation as the proposal of its contrastive samples; ``log_prob`` and ``sample`` work in
    the original units (the standardization's Jacobian is included).
    """

    flow: AbstractConditionalDensity
    theta_scaler: Standardizer
    x_scaler: Standardizer

    def log_prob(self, theta: Float[Array, " d"], x: Array) -> Float[Array, ""]:
        """``log q(theta | x)`` for one pair."""
        cond = self.x_scaler(jnp.ravel(x))
        return self.flow._log_prob(self.theta_scaler(theta), cond) + (
            self.theta_scaler.log_abs_det()
        )

    def sample_and_log_prob(
        self, key: PRNGKeyArray, x: Array, num: int
    ) -> tuple[Float[Array, "num d"], Float[Array, " num"]]:
        """``num`` reparameterized draws from ``q(. | x)`` with their log densities."""
        cond = self.x_scaler(jnp.ravel(x))
        z, log_q = self.flow.sample_and_log_prob(key, cond, num)
        return self.theta_scaler.inverse(z), log_q + self.theta_scaler.log_abs_det()


def make_conditional_posterior(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    design: Any,
    *,
    num_layers: int = 4,
    hidden_size: int = 64,
) -> ConditionalPosterior:
    """A :class:`ConditionalPosterior` (neural spline flow) for ``simulator`` at ``design``."""
    k_pilot, k_flow = jax.random.split(key)
    theta_scaler, x_scaler, x_size = pilot_standardizers(k_pilot, simulator, design)
    flow = neural_spline_flow(
        k_flow, simulator.theta_dim, cond_dim=x_size, num_layers=num_layers,
        hidden_size=hidden_size,
    )
    return ConditionalPosterior(flow, theta_scaler, x_scaler)
