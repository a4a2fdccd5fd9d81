"""A gravitational-wave-like chirp in Gaussian noise."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_theta, check_times
from .base import AbstractSimulator


class Chirp(AbstractSimulator):
    """A sinusoid whose frequency and amplitude rise towards a merger time, in white noise.

    A caricature of a compact-binary inspiral signal (the leading-order "chirp": frequency
    ``f(t) = f0 (1 - t / t_c)^(-3/8)`` and amplitude ``A (f(t) / f0)^(2/3)``, as in Maggiore,
    *Gravitational Waves* vol. 1, ch. 4), sampled at the design times on ``[0, 1)``::

        theta = (log10 amplitude, f0, t_c, phase)
        x(t) = A (f / f0)^(2/3) sin(phase + 2 pi int_0^t f) + noise_scale * eps,   t < t_c

    The phase integral is closed-form: ``int_0^t f = (8/5) f0 t_c [1 - (1 - t/t_c)^(5/8)]``.
    The signal is zero after ``t_c``. Use :class:`~jaxgen.nn.CNN1dEmbedding` as the embedding.

    Args:
        num_samples: points of the default design (evenly spaced on [0, 1)).
        noise_scale: standard deviation of the white noise.
    """

    num_samples: int = eqx.field(static=True)
    noise_scale: float = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(self, num_samples: int = 128, noise_scale: float = 0.5):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 8:
            raise ValueError(f"`num_samples` must be an int >= 8, got {num_samples!r}.")
        if not noise_scale > 0:
            raise ValueError(f"`noise_scale` must be positive, got {noise_scale!r}.")
        self.num_samples = num_samples
        self.noise_scale = float(noise_scale)
        self.prior = dist.Uniform(
            jnp.array([-0.5, 2.0, 1.05, 0.0]), jnp.array([0.5, 8.0, 1.5, 2 * jnp.pi])
        ).to_event(1)

    def default_design(self) -> Float[Array, " t"]:
        return jnp.arange(self.num_samples) / self.num_samples

    def signal(self, theta: Float[Array, " 4"], design: Any = None) -> Float[Array, " t"]:
        """The noiseless chirp at the design times."""
        theta = check_theta(theta, 4, "Chirp")
        t = check_times(self.default_design() if design is None else design, "Chirp")
        log_amp, f0, t_c, phase = theta
        u = jnp.clip(1.0 - t / t_c, 1e-3, None)
        freq_ratio = u ** (-3.0 / 8.0)
        cycles = 1.6 * f0 * t_c * (1.0 - u ** (5.0 / 8.0))
        wave = 10.0**log_amp * freq_ratio ** (2.0 / 3.0) * jnp.sin(phase + 2 * jnp.pi * cycles)
        return jnp.where(t < t_c, wave, 0.0)

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 4"], design: Any = None
    ) -> Float[Array, " t"]:
        check_key(key)
        s = self.signal(theta, design)
        return s + self.noise_scale * jax.random.normal(key, s.shape, s.dtype)

    def log_likelihood(
        self, theta: Float[Array, " 4"], x: Float[Array, " t"], design: Any = None
    ) -> Float[Array, ""]:
        """``sum_t log N(x_t; signal(theta, t), noise_scale^2)``."""
        return dist.Normal(self.signal(theta, design), self.noise_scale).log_prob(x).sum()
