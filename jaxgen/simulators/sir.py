"""The SIR epidemic benchmark simulator."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._ode import solve_at_times
from ._utils import check_theta, check_times
from .base import AbstractSimulator

# The Gaussian observation model floors p(1 - p) at this value so its density stays proper (and
# its gradient finite) where the ODE gives p = 0; it is the variance of p = 1e-6, i.e. one
# infected person in the default population.
_MIN_BINOMIAL_VARIANCE = 1e-6


def _sir_field(t, y, args):
    # In population fractions (s, i); r = 1 - s - i is not needed for the observations.
    beta, gamma = args
    s, i = y[0], y[1]
    infection = beta * s * i
    return jnp.stack([-infection, infection - gamma * i])


class SIR(AbstractSimulator):
    """SIR epidemic: noisy counts of infected people in a small sample, at design times.

    Model (sbibm task "sir", Lueckmann et al. 2021, *Benchmarking Simulation-Based Inference*,
    AISTATS)::

        beta ~ LogNormal(log 0.4, 0.5),   gamma ~ LogNormal(log 1/8, 0.2)
        dS/dt = -beta S I / N,   dI/dt = beta S I / N - gamma I,   dR/dt = gamma I
        N = 10^6,  S(0) = N - 1,  I(0) = 1,  R(0) = 0
        x_k ~ Binomial(1000, I(t_k) / N)

    The design is the vector of observation days; the default is sbibm's: days 0, 17, ..., 153
    (sbibm saves the solution daily over 160 days and keeps every 17th day). The ODE is solved
    with diffrax (Tsit5, adaptive steps, at most ``max_steps``); a failed solve gives NaN.

    Observation model: by default the Binomial is replaced by its Gaussian approximation
    ``x_k = n p + sqrt(n max(p (1 - p), 1e-6)) eps_k`` with ``eps_k ~ N(0, 1)`` and ``n = 1000``,
    so ``x`` is differentiable in ``theta`` and in the days (reparameterised noise; the variance
    floor keeps the density proper where ``p = 0``). With ``exact_binomial=True`` the draw is the
    exact Binomial as in sbibm: integer-valued and not differentiable. :meth:`log_likelihood`
    is exact for the chosen observation model.

    Args:
        population: N.
        initial_infected: I(0).
        num_sampled: people tested at each observation (n).
        exact_binomial: draw exact Binomial counts instead of the Gaussian approximation.
        rtol, atol: tolerances of the step-size controller (on population fractions).
        max_steps: step budget of the solver.

    Example:
        ```python
        sim = jg.simulators.SIR()
        theta, x = jg.simulate(jax.random.key(0), sim, 1000)        # (1000, 2), (1000, 10)
        ```
    """

    prior: dist.Distribution
    population: float = eqx.field(static=True)
    initial_infected: float = eqx.field(static=True)
    num_sampled: int = eqx.field(static=True)
    exact_binomial: bool = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        population: float = 1e6,
        initial_infected: float = 1.0,
        num_sampled: int = 1000,
        exact_binomial: bool = False,
        rtol: float = 1e-6,
        atol: float = 1e-12,
        max_steps: int = 4096,
    ):
        if not 0 < initial_infected <= population:
            raise ValueError(
                f"Need 0 < initial_infected <= population, got initial_infected="
                f"{initial_infected!r}, population={population!r}."
            )
        if isinstance(num_sampled, bool) or not isinstance(num_sampled, int) or num_sampled < 1:
            raise ValueError(f"`num_sampled` must be a positive integer, got {num_sampled!r}.")
        self.prior = dist.LogNormal(
            jnp.array([math.log(0.4), math.log(1.0 / 8.0)]), jnp.array([0.5, 0.2])
        ).to_event(1)
        self.population = float(population)
        self.initial_infected = float(initial_infected)
        self.num_sampled = num_sampled
        self.exact_binomial = bool(exact_binomial)
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.max_steps = int(max_steps)

    def default_design(self) -> Float[Array, " 10"]:
        """Observation days 0, 17, ..., 153 (sbibm's subsampling of a 160-day run)."""
        return 17.0 * jnp.arange(10.0)

    def infected_fraction(
        self, theta: Float[Array, " 2"], design: Float[Array, " t"] | None = None
    ) -> Float[Array, " t"]:
        """The noiseless ``I(t) / N`` at the design days (NaN where the solve failed)."""
        theta = check_theta(theta, 2, "SIR")
        days = check_times(self.default_design() if design is None else design, "SIR")
        dtype = jnp.result_type(theta, days)
        i0 = self.initial_infected / self.population
        y0 = jnp.array([1.0 - i0, i0], dtype)
        states = solve_at_times(
            _sir_field, y0, days.astype(dtype), (theta[0], theta[1]),
            rtol=self.rtol, atol=self.atol, max_steps=self.max_steps,
        )
        return states[:, 1]

    def _observation(self, p):
        p = jnp.clip(p, 0.0, 1.0)
        mean = self.num_sampled * p
        std = jnp.sqrt(self.num_sampled * jnp.maximum(p * (1.0 - p), _MIN_BINOMIAL_VARIANCE))
        return p, mean, std

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 2"], design: Float[Array, " t"] | None = None
    ) -> Float[Array, " t"]:
        """Simulate the number of infected people among ``num_sampled`` at each design day."""
        check_key(key)
        p, mean, std = self._observation(self.infected_fraction(theta, design))
        if self.exact_binomial:
            counts = jax.random.binomial(
                key, self.num_sampled, jnp.nan_to_num(p), dtype=p.dtype
            )
            return jnp.where(jnp.isnan(p), jnp.nan, counts)
        return mean + std * jax.random.normal(key, p.shape, p.dtype)

    def log_likelihood(
        self,
        theta: Float[Array, " 2"],
        x: Float[Array, " t"],
        design: Float[Array, " t"] | None = None,
    ) -> Float[Array, ""]:
        """Exact ``log p(x | theta)`` under the chosen observation model."""
        p, mean, std = self._observation(self.infected_fraction(theta, design))
        x = jnp.asarray(x)
        if self.exact_binomial:
            return dist.Binomial(self.num_sampled, probs=p).log_prob(x).sum(-1)
        return dist.Normal(mean, std).log_prob(x).sum(-1)
