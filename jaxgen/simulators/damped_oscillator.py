"""A damped harmonic oscillator measured at chosen times."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_theta, check_times
from .base import AbstractSimulator


class DampedOscillator(AbstractSimulator):
    """Amplitude of an underdamped oscillator measured with Gaussian noise at design times.

    Model::

        theta = (A0, gamma, omega) ~ U([0.5, 3] x [0.05, 1] x [0.5, 4])
        x_k = A0 exp(-gamma t_k) cos(omega t_k) + noise_scale * eps_k,   eps_k ~ N(0, 1)

    The design is the vector of measurement times ``t`` (default ten times evenly spaced in
    [0, 5]); ``x`` has one entry per time. The likelihood is exact and the simulator is
    differentiable in ``theta`` and in the times (reparameterised noise), which makes it a test bed
    for gradient-based experimental design (e.g. Foster et al. 2019, *Variational Bayesian Optimal
    Experimental Design*, NeurIPS).

    Args:
        noise_scale: standard deviation of the measurement noise (0.05).

    Example:
        ```python
        sim = jg.simulators.DampedOscillator()
        x = sim(jax.random.key(0), jnp.array([1.0, 0.3, 2.0]), jnp.array([0.5, 1.0, 2.0]))
        ```
    """

    noise_scale: float = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(self, noise_scale: float = 0.05):
        if not noise_scale > 0:
            raise ValueError(f"`noise_scale` must be positive, got {noise_scale!r}.")
        self.noise_scale = float(noise_scale)
        self.prior = dist.Uniform(
            jnp.array([0.5, 0.05, 0.5]), jnp.array([3.0, 1.0, 4.0])
        ).to_event(1)

    def default_design(self) -> Float[Array, " 10"]:
        """Ten measurement times evenly spaced in [0, 5]."""
        return jnp.linspace(0.0, 5.0, 10)

    def signal(self, theta: Float[Array, " 3"], design: Float[Array, " t"] | None = None):
        """The noiseless amplitude ``A0 exp(-gamma t) cos(omega t)`` at the design times."""
        theta = check_theta(theta, 3, "DampedOscillator")
        times = check_times(self.default_design() if design is None else design,
                            "DampedOscillator")
        amplitude, damping, frequency = theta
        return amplitude * jnp.exp(-damping * times) * jnp.cos(frequency * times)

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 3"], design: Float[Array, " t"] | None = None
    ) -> Float[Array, " t"]:
        """Simulate noisy amplitudes at the design times."""
        check_key(key)
        mean = self.signal(theta, design)
        return mean + self.noise_scale * jax.random.normal(key, mean.shape, mean.dtype)

    def log_likelihood(
        self,
        theta: Float[Array, " 3"],
        x: Float[Array, " t"],
        design: Float[Array, " t"] | None = None,
    ) -> Float[Array, ""]:
        """``sum_k log N(x_k; signal(theta, t_k), noise_scale^2)``."""
        mean = self.signal(theta, design)
        return dist.Normal(mean, self.noise_scale).log_prob(jnp.asarray(x)).sum(-1)
