"""Simulators whose latent variables are tractable, and a two-stage physics toy."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_no_design, check_theta
from .base import AbstractSimulator


class AbstractLatentSimulator(AbstractSimulator):
    """A simulator that exposes its latent variables ``z`` and the joint density.

    Subclasses implement ``sample_joint(key, theta) -> (x, z)`` and
    ``joint_log_prob(theta, x, z) = log p(x, z | theta)`` for ONE example. Autodiff of the
    joint density then gives the joint score ``grad_theta log p(x, z | theta)`` and the joint
    likelihood ratio, the "gold" that :mod:`jaxgen.sbi.gold` mines (Brehmer, Louppe, Pavez &
    Cranmer 2020, PNAS).
    """

    @abc.abstractmethod
    def sample_joint(
        self, key: PRNGKeyArray, theta: Float[Array, " d"]
    ) -> tuple[Float[Array, ...], Float[Array, ...]]:
        """One simulation ``x`` together with the latent ``z`` that produced it."""

    @abc.abstractmethod
    def joint_log_prob(
        self, theta: Float[Array, " d"], x: Float[Array, ...], z: Float[Array, ...]
    ) -> Float[Array, ""]:
        """``log p(x, z | theta)`` for one example."""

    def __call__(self, key, theta, design=None):
        check_no_design(design, type(self).__name__)
        return self.sample_joint(key, theta)[0]


class PartonDetector(AbstractLatentSimulator):
    """Two-stage toy: a "parton-level" latent smeared by a detector.

    Model::

        theta ~ Uniform(-2, 2)^2
        z | theta ~ N(g(theta), parton_scale^2 I_2),   g(theta) = (theta_1, theta_2 + theta_1^2 / 2)
        x | z     ~ N(z, detector_scale^2 I_2)

    The curved mean gives a banana-shaped posterior. Because both stages are Gaussian, the
    marginal likelihood ``N(x; g(theta), (parton_scale^2 + detector_scale^2) I)`` is known too
    (:meth:`log_likelihood`), and so is the marginal score: exact answers to check the gold
    methods against.

    Example:
        ```python
        sim = jg.simulators.PartonDetector()
        x, z = sim.sample_joint(key, jnp.array([0.5, -0.3]))
        ```
    """

    parton_scale: float = eqx.field(static=True)
    detector_scale: float = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(self, parton_scale: float = 0.5, detector_scale: float = 0.5):
        if not parton_scale > 0 or not detector_scale > 0:
            raise ValueError(
                f"The scales must be positive, got parton_scale={parton_scale!r}, "
                f"detector_scale={detector_scale!r}."
            )
        self.parton_scale = float(parton_scale)
        self.detector_scale = float(detector_scale)
        self.prior = dist.Uniform(jnp.full(2, -2.0), jnp.full(2, 2.0)).to_event(1)

    @staticmethod
    def mean(theta: Float[Array, " 2"]) -> Float[Array, " 2"]:
        """The parton-level mean g(theta)."""
        return jnp.stack([theta[0], theta[1] + 0.5 * theta[0] ** 2])

    def sample_joint(self, key, theta):
        check_key(key)
        theta = check_theta(theta, 2, "PartonDetector")
        k_z, k_x = jax.random.split(key)
        z = self.mean(theta) + self.parton_scale * jax.random.normal(k_z, (2,), theta.dtype)
        x = z + self.detector_scale * jax.random.normal(k_x, (2,), theta.dtype)
        return x, z

    def joint_log_prob(self, theta, x, z):
        return (
            dist.Normal(self.mean(theta), self.parton_scale).log_prob(z).sum()
            + dist.Normal(z, self.detector_scale).log_prob(x).sum()
        )

    def log_likelihood(self, theta: Float[Array, " 2"], x: Float[Array, " 2"], design: Any = None):
        """The exact marginal ``log p(x | theta)``."""
        check_no_design(design, "PartonDetector")
        scale = (self.parton_scale**2 + self.detector_scale**2) ** 0.5
        return dist.Normal(self.mean(theta), scale).log_prob(jnp.asarray(x)).sum()
