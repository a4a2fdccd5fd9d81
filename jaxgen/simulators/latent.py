"""Simulators whose latent variables are tractable, and a two-stage physics toy."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
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


class NumpyroSimulator(AbstractLatentSimulator):
    """A simulator written as a numpyro model, with every latent sample site tractable.

    ``model(theta)`` samples its latent sites and one observed site named ``observed`` (with
    ``obs=None``; its value is the simulation ``x``). The latents are flattened into one
    vector ``z`` in site order, and ``joint_log_prob`` is numpyro's log density of the model
    with ``z`` and ``x`` substituted, so the joint score and ratio come for free by autodiff.

    Args:
        model: ``model(theta)``, a numpyro model.
        prior: the prior over theta (numpyro distribution, event shape ``(d,)``).
        observed: the name of the site holding ``x``.

    Example:
        ```python
        def model(theta):
            z = numpyro.sample("z", dist.Normal(theta[0], 1.0).expand([3]).to_event(1))
            numpyro.sample("x", dist.Normal(z, 0.5).to_event(1))

        sim = jg.simulators.NumpyroSimulator(model, dist.Normal(0, 1).expand([1]).to_event(1))
        ```
    """

    model: Any = eqx.field(static=True)
    prior: dist.Distribution
    observed: str = eqx.field(static=True)
    latent_shapes: tuple = eqx.field(static=True)

    def __init__(self, model: Any, prior: dist.Distribution, observed: str = "x"):
        from numpyro import handlers

        self.model = model
        self.prior = prior
        self.observed = observed

        def sites(key, theta):
            tr = handlers.trace(handlers.seed(model, key)).get_trace(theta)
            return {name: site["value"] for name, site in tr.items() if site["type"] == "sample"}

        # Shapes by tracing only: no key is made, no randomness is drawn.
        key_struct = jax.eval_shape(lambda: jax.random.key(0))
        theta_struct = jax.ShapeDtypeStruct(prior.event_shape, jnp.float32)
        shapes = jax.eval_shape(sites, key_struct, theta_struct)
        if observed not in shapes:
            raise ValueError(
                f"The model has no sample site named {observed!r} (sites: {sorted(shapes)}). "
                f"Pass `observed=` with the name of the site that holds the simulation."
            )
        self.latent_shapes = tuple(
            (name, tuple(s.shape)) for name, s in shapes.items() if name != observed
        )

    def _sites(self, key, theta):
        from numpyro import handlers

        tr = handlers.trace(handlers.seed(self.model, key)).get_trace(theta)
        return {name: site["value"] for name, site in tr.items() if site["type"] == "sample"}

    def sample_joint(self, key, theta):
        check_key(key)
        values = self._sites(key, jnp.asarray(theta, dtype=float))
        z = [jnp.reshape(values[name], (-1,)) for name, _ in self.latent_shapes]
        return values[self.observed], jnp.concatenate(z) if z else jnp.zeros(0)

    def joint_log_prob(self, theta, x, z):
        from numpyro.infer.util import log_density

        params, start = {self.observed: x}, 0
        for name, shape in self.latent_shapes:
            size = int(np.prod(shape)) if shape else 1
            params[name] = jnp.reshape(z[start : start + size], shape)
            start += size
        return log_density(self.model, (theta,), {}, params)[0]
