"""The linear-Gaussian benchmark simulator."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_no_design, check_theta
from .base import AbstractSimulator


class GaussianLinear(AbstractSimulator):
    """Gaussian prior, Gaussian noise around theta: the simplest task with an exact posterior.

    Model (sbibm task "gaussian_linear", Lueckmann et al. 2021, *Benchmarking Simulation-Based
    Inference*, AISTATS)::

        theta ~ N(0, prior_scale^2 I_dim),    x | theta ~ N(theta, noise_scale^2 I_dim)

    with ``prior_scale^2 = noise_scale^2 = 0.1`` by default, as in sbibm. The likelihood and the
    posterior are exact (see :meth:`log_likelihood` and :meth:`posterior`). There is no design.

    Args:
        dim: dimension of ``theta`` and of ``x``.
        prior_scale: standard deviation of each prior coordinate.
        noise_scale: standard deviation of the observation noise.

    Example:
        ```python
        sim = jg.simulators.GaussianLinear(dim=3)
        theta, x = jg.simulate(jax.random.key(0), sim, 1000)
        exact = sim.posterior(x[0])          # numpyro MultivariateNormal
        ```
    """

    dim: int = eqx.field(static=True)
    prior_scale: float = eqx.field(static=True)
    noise_scale: float = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(
        self, dim: int = 10, prior_scale: float = 0.1**0.5, noise_scale: float = 0.1**0.5
    ):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"`dim` must be a positive integer, got {dim!r}.")
        if not prior_scale > 0 or not noise_scale > 0:
            raise ValueError(
                f"`prior_scale` and `noise_scale` are standard deviations and must be positive, "
                f"got prior_scale={prior_scale!r}, noise_scale={noise_scale!r}."
            )
        self.dim = dim
        self.prior_scale = float(prior_scale)
        self.noise_scale = float(noise_scale)
        self.prior = dist.Normal(jnp.zeros(dim), self.prior_scale).to_event(1)

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " dim"], design: Any = None
    ) -> Float[Array, " dim"]:
        """Simulate ``x = theta + noise_scale * eps`` with ``eps ~ N(0, I)``."""
        check_key(key)
        check_no_design(design, "GaussianLinear")
        theta = check_theta(theta, self.dim, "GaussianLinear")
        return theta + self.noise_scale * jax.random.normal(key, theta.shape, theta.dtype)

    def log_likelihood(
        self, theta: Float[Array, " dim"], x: Float[Array, " dim"], design: Any = None
    ) -> Float[Array, ""]:
        """``log N(x; theta, noise_scale^2 I)`` for one example."""
        check_no_design(design, "GaussianLinear")
        theta = check_theta(theta, self.dim, "GaussianLinear")
        return dist.Normal(theta, self.noise_scale).log_prob(jnp.asarray(x)).sum(-1)

    def posterior(self, x_o: Float[Array, "*n dim"]) -> dist.MultivariateNormal:
        """The exact posterior ``p(theta | x_o)`` by Gaussian conjugacy.

        Args:
            x_o: one observation ``(dim,)`` or ``n`` i.i.d. observations ``(n, dim)`` made at the
                same ``theta``.

        Returns:
            ``MultivariateNormal(mean, cov)`` with precision ``1/prior_scale^2 + n/noise_scale^2``
            (times the identity) and ``mean = cov @ sum(x_o) / noise_scale^2``.
        """
        x_o = jnp.asarray(x_o)
        if x_o.ndim == 1:
            x_o = x_o[None]
        if x_o.ndim != 2 or x_o.shape[1] != self.dim or x_o.shape[0] == 0:
            raise ValueError(
                f"`x_o` must be one observation of shape ({self.dim},) or a stack of i.i.d. "
                f"observations of shape (n, {self.dim}), got shape {x_o.shape}."
            )
        num = x_o.shape[0]
        precision = 1.0 / self.prior_scale**2 + num / self.noise_scale**2
        mean = x_o.sum(0) / self.noise_scale**2 / precision
        cov = jnp.eye(self.dim, dtype=mean.dtype) / precision
        return dist.MultivariateNormal(mean, covariance_matrix=cov)
