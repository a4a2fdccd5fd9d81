"""Bayesian linear regression with a chosen design matrix: the closed-form EIG test bed."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_theta
from .base import AbstractSimulator


class LinearGaussianRegression(AbstractSimulator):
    """Linear regression with Gaussian prior and noise; the design is the design matrix.

    Model::

        theta ~ N(0, prior_scale^2 I_p),    x = D theta + noise_scale * eps,   eps ~ N(0, I_n)

    The design ``D`` has shape ``(n, p)``: ``n`` measurements (experiments along the leading
    axis), each at a point ``D[i]`` of ``R^p``. The expected information gain is exact,
    ``EIG(D) = 1/2 log det(I_p + prior_scale^2 / noise_scale^2 D^T D)`` (Chaloner & Verdinelli
    1995, *Bayesian Experimental Design: A Review*), and so is the posterior; with the design
    kept in the box ``[-1, 1]`` the optimal designs put every point on a corner.

    Args:
        num_features: ``p``, the dimension of ``theta`` and of each design point.
        num_measurements: ``n`` in the default design.
        prior_scale: prior standard deviation of each coefficient.
        noise_scale: standard deviation of the measurement noise.

    Example:
        ```python
        sim = jg.simulators.LinearGaussianRegression(num_features=2)
        design = jax.random.uniform(key, (30, 2), minval=-1, maxval=1)
        sim.exact_eig(design)
        ```
    """

    num_features: int = eqx.field(static=True)
    num_measurements: int = eqx.field(static=True)
    prior_scale: float = eqx.field(static=True)
    noise_scale: float = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(
        self,
        num_features: int = 2,
        num_measurements: int = 5,
        prior_scale: float = 1.0,
        noise_scale: float = 1.0,
    ):
        for name, value in (("num_features", num_features), ("num_measurements",
                                                               num_measurements)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if not prior_scale > 0 or not noise_scale > 0:
            raise ValueError(
                f"`prior_scale` and `noise_scale` must be positive, got {prior_scale!r}, "
                f"{noise_scale!r}."
            )
        self.num_features = num_features
        self.num_measurements = num_measurements
        self.prior_scale = float(prior_scale)
        self.noise_scale = float(noise_scale)
        self.prior = dist.Normal(jnp.zeros(num_features), self.prior_scale).to_event(1)

    def default_design(self) -> Float[Array, "n p"]:
        """``n`` points on the diagonal from ``-1`` to ``1`` (all features equal)."""
        line = jnp.linspace(-1.0, 1.0, self.num_measurements)
        return jnp.tile(line[:, None], (1, self.num_features))

    def _matrix(self, design) -> Float[Array, "n p"]:
        design = self.default_design() if design is None else jnp.asarray(design)
        if design.ndim == 1 and self.num_features == 1:
            design = design[:, None]
        if design.ndim != 2 or design.shape[1] != self.num_features:
            raise ValueError(
                f"The design of LinearGaussianRegression is a matrix of shape (n, "
                f"{self.num_features}) (one row per measurement), got shape {design.shape}."
            )
        return design

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " p"], design: Float[Array, "n p"] = None
    ) -> Float[Array, " n"]:
        """Simulate ``x = D theta + noise``."""
        check_key(key)
        theta = check_theta(theta, self.num_features, "LinearGaussianRegression")
        matrix = self._matrix(design)
        mean = matrix @ theta
        return mean + self.noise_scale * jax.random.normal(key, mean.shape, mean.dtype)

    def log_likelihood(
        self, theta: Float[Array, " p"], x: Float[Array, " n"], design: Float[Array, "n p"] = None
    ) -> Float[Array, ""]:
        """``log N(x; D theta, noise_scale^2 I)``."""
        matrix = self._matrix(design)
        return dist.Normal(matrix @ theta, self.noise_scale).log_prob(jnp.asarray(x)).sum(-1)

    def exact_eig(self, design: Float[Array, "n p"] = None) -> Float[Array, ""]:
        """The closed-form EIG ``1/2 log det(I + prior_scale^2 / noise_scale^2 D^T D)``."""
        matrix = self._matrix(design)
        ratio = (self.prior_scale / self.noise_scale) ** 2
        gram = jnp.eye(self.num_features) + ratio * matrix.T @ matrix
        return 0.5 * jnp.linalg.slogdet(gram)[1]

    def posterior(
        self, x: Float[Array, " n"], design: Float[Array, "n p"] = None
    ) -> dist.MultivariateNormal:
        """The exact posterior ``p(theta | x, D)`` (Gaussian conjugacy)."""
        matrix = self._matrix(design)
        precision = jnp.eye(self.num_features) / self.prior_scale**2 + (
            matrix.T @ matrix / self.noise_scale**2
        )
        cov = jnp.linalg.inv(precision)
        mean = cov @ matrix.T @ jnp.asarray(x) / self.noise_scale**2
        return dist.MultivariateNormal(mean, covariance_matrix=cov)
