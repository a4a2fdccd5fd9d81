"""Forward-backward asymmetry in e+ e- -> mu+ mu-: the beam energy as the design."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_theta
from .base import AbstractSimulator

_BISECTION_STEPS = 40


def _asymmetry(g_f: Array, beam_energy: Array) -> Array:
    sqrt_s = 2.0 * beam_energy
    a = 2.0 * jnp.tanh(10.0 * (sqrt_s - 90.0) / 90.0) * g_f
    # |a| <= 2 keeps 1 + c^2 + a c >= 0 on [-1, 1]; the default prior never reaches the clip.
    return jnp.clip(a, -2.0, 2.0)


def _cdf(c: Array, a: Array) -> Array:
    # Integral of (1 + c^2 + a c) from -1 to c, divided by the normalizer 8 / 3.
    return 3.0 / 8.0 * ((c + 1.0) + (c**3 + 1.0) / 3.0 + a * (c**2 - 1.0) / 2.0)


def _density(c: Array, a: Array) -> Array:
    return 3.0 / 8.0 * (1.0 + c**2 + a * c)


class Weinberg(AbstractSimulator):
    """Angular distribution of muon pairs near the Z pole; design: the beam energy.

    Model::

        g_f ~ U(0.5, 1.2)
        sqrt(s) = 2 E_beam,  a_fb = 2 tanh(10 (sqrt(s) - 90) / 90) g_f   (clipped to [-2, 2])
        cos(theta_k) ~ p(c) = 3/8 (1 + c^2 + a_fb c) on [-1, 1],  k = 1..num_events

    The design is the beam energy ``E_beam`` in [40, 50] GeV (a scalar; a vector of energies
    simulates one run per energy, events along the last axis). The asymmetry, hence the
    information about ``g_f``, grows with ``|sqrt(s) - 90|``, so the optimal energy lies on an
    edge of the range: the toy of the "active sciencing" demonstrations (Heinrich et al.,
    pyprob/madminer tutorials). Events are drawn by inverting the CDF (bisection) followed by one
    Newton step, which makes them exact reparameterized samples: ``dc/da = -dF/da / p(c)``.

    Args:
        num_events: muon pairs per run.
    """

    num_events: int = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(self, num_events: int = 50):
        if isinstance(num_events, bool) or not isinstance(num_events, int) or num_events < 1:
            raise ValueError(f"`num_events` must be a positive integer, got {num_events!r}.")
        self.num_events = num_events
        self.prior = dist.Uniform(jnp.array([0.5]), jnp.array([1.2])).to_event(1)

    def default_design(self) -> Float[Array, ""]:
        return jnp.array(45.0)

    def design_bounds(self) -> tuple[float, float]:
        """The allowed beam energies, [40, 50] GeV."""
        return 40.0, 50.0

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 1"], design: Float[Array, "*shape"] = None
    ) -> Float[Array, "*shape num_events"]:
        check_key(key)
        theta = check_theta(theta, 1, "Weinberg")
        energy = jnp.asarray(self.default_design() if design is None else design, float)
        a = _asymmetry(theta[0], energy)[..., None]
        u = jax.random.uniform(key, energy.shape + (self.num_events,))
        a_fixed = jax.lax.stop_gradient(a)

        def bisect(_, bounds):
            low, high = bounds
            mid = 0.5 * (low + high)
            below = _cdf(mid, a_fixed) < u
            return jnp.where(below, mid, low), jnp.where(below, high, mid)

        low, high = jax.lax.fori_loop(
            0, _BISECTION_STEPS, bisect, (-jnp.ones_like(u), jnp.ones_like(u))
        )
        c0 = jax.lax.stop_gradient(0.5 * (low + high))
        # One Newton step: the value stays c0 (to float precision) and the gradient becomes
        # the implicit-function gradient of the inverse CDF.
        step = (_cdf(c0, a) - u) / jnp.maximum(_density(c0, a), 1e-6)
        return c0 - (step - jax.lax.stop_gradient(step))

    def log_likelihood(
        self, theta: Float[Array, " 1"], x: Float[Array, "*shape"], design: Float[Array, "*shape"] = None
    ) -> Float[Array, ""]:
        theta = check_theta(theta, 1, "Weinberg")
        energy = jnp.asarray(self.default_design() if design is None else design, float)
        a = _asymmetry(theta[0], energy)[..., None]
        return jnp.sum(jnp.log(jnp.maximum(_density(jnp.asarray(x), a), 1e-30)))
