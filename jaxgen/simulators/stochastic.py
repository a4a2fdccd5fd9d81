"""Implicit simulators with stochastic dynamics (SDEs through diffrax), read at design times.

The SDE is solved on a fixed time grid (Euler-Maruyama through diffrax with a virtual Brownian
tree) and read at the measurement times by linear interpolation between grid points. The
measurement times enter only through that interpolation, so design gradients are exact
derivatives of the simulator as defined (no finite differences); the likelihood is intractable.
"""

from __future__ import annotations

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._utils import check_theta, check_times
from .base import AbstractSimulator


def _solve_on_grid(drift, diffusion, y0, args, key, t1, num_steps, noise_dim):
    """Euler-Maruyama solution of ``dy = drift dt + diffusion dW`` at ``num_steps + 1`` points."""
    dt = t1 / num_steps
    brownian = diffrax.VirtualBrownianTree(
        0.0, t1, tol=dt / 2, shape=(noise_dim,), key=key
    )
    terms = diffrax.MultiTerm(
        diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, brownian)
    )
    grid = jnp.linspace(0.0, t1, num_steps + 1)
    solution = diffrax.diffeqsolve(
        terms, diffrax.Euler(), 0.0, t1, dt, y0, args=args,
        saveat=diffrax.SaveAt(ts=grid), max_steps=num_steps + 1, throw=False,
    )
    return grid, solution.ys


def _interpolate(grid, values, times):
    # Piecewise-linear in the time: differentiable in `times` between grid points.
    return jax.vmap(lambda column: jnp.interp(times, grid, column), in_axes=1, out_axes=-1)(
        values
    )


class StochasticSIR(AbstractSimulator):
    """SIR epidemic with demographic noise (a diffusion approximation); design: when to look.

    Model (Allen 2008, *An Introduction to Stochastic Epidemic Models*; the design problem of
    Kleinegesse & Gutmann 2021, *Gradient-based Bayesian Experimental Design for Implicit Models
    using Mutual Information Lower Bounds*)::

        beta ~ U(0.01, 1.0),  gamma ~ U(0.01, 0.5)
        dS = -beta S I / N dt - sqrt(beta S I / N) dW_1
        dI = (beta S I / N - gamma I) dt + sqrt(beta S I / N) dW_1 - sqrt(gamma I) dW_2
        S(0) = N - 2, I(0) = 2, N = 500

    ``x`` is the number of infected people ``I(tau_k)`` at the design times ``tau_k`` in
    [0, ``horizon``] (clipped to [0, N]). Only simulation is available: use the likelihood-free
    estimators (``jg.boed.InfoNCE()``, ``NWJ``, ``DonskerVaradhan``, ``NeuralRatio``).

    Args:
        population: N.
        horizon: last day of the simulation.
        num_steps: Euler-Maruyama steps over the horizon (default 1000: steps of 0.1 day).
    """

    population: float = eqx.field(static=True)
    horizon: float = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(self, population: float = 500.0, horizon: float = 100.0, num_steps: int = 1000):
        if not population > 2 or not horizon > 0 or num_steps < 1:
            raise ValueError(
                f"Need population > 2, horizon > 0, num_steps >= 1; got {population!r}, "
                f"{horizon!r}, {num_steps!r}."
            )
        self.population = float(population)
        self.horizon = float(horizon)
        self.num_steps = int(num_steps)
        self.prior = dist.Uniform(jnp.array([0.01, 0.01]), jnp.array([1.0, 0.5])).to_event(1)

    def default_design(self) -> Float[Array, " 2"]:
        return jnp.array([10.0, 30.0])

    def design_bounds(self) -> tuple[float, float]:
        return 0.0, self.horizon

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 2"],
        design: Float[Array, " t"] | None = None,
    ) -> Float[Array, " t"]:
        """Infected counts ``I(tau_k)`` at the design times (linear between grid points)."""
        check_key(key)
        theta = check_theta(theta, 2, "StochasticSIR")
        times = check_times(self.default_design() if design is None else design, "StochasticSIR")
        n = self.population

        def rates(y, args):
            beta, gamma = args
            s, i = jnp.maximum(y[0], 0.0), jnp.maximum(y[1], 0.0)
            return beta * s * i / n, gamma * i

        def drift(t, y, args):
            infection, recovery = rates(y, args)
            return jnp.stack([-infection, infection - recovery])

        def diffusion(t, y, args):
            infection, recovery = rates(y, args)
            # floored so the square root keeps a finite derivative once an epidemic dies out
            a, b = jnp.sqrt(jnp.maximum(infection, 1e-8)), jnp.sqrt(jnp.maximum(recovery, 1e-8))
            zero = jnp.zeros_like(a)
            return jnp.stack([jnp.stack([-a, zero]), jnp.stack([a, -b])])

        y0 = jnp.array([n - 2.0, 2.0])
        grid, ys = _solve_on_grid(
            drift, diffusion, y0, (theta[0], theta[1]), key, self.horizon, self.num_steps, 2
        )
        ys = jnp.clip(ys, 0.0, n)
        return _interpolate(grid, ys, jnp.clip(times, 0.0, self.horizon))[..., 1]


class Pharmacokinetic(AbstractSimulator):
    """One-compartment oral-dose pharmacokinetics with stochastic elimination; design: sample times.

    Model (the pharmacokinetic design problem of Ryan et al. 2014 and Kleinegesse & Gutmann
    2021, with the elimination made stochastic)::

        log k_a ~ N(log 1, 0.05),  log k_e ~ N(log 0.1, 0.05),  log V ~ N(log 20, 0.05)
        (the second argument of N is the variance)
        dA_gut = -k_a A_gut dt,   A_gut(0) = 400 (dose)
        dA_c = (k_a A_gut - k_e A_c) dt + sigma A_c dW,   A_c(0) = 0
        x_k = A_c(tau_k) / V + 0.1 eps_k,   eps_k ~ N(0, 1)

    with ``sigma = 0.1``; ``x`` are concentrations at the sample times ``tau_k`` in [0, 24] h.
    The concentration path is random, so the likelihood is intractable: use the likelihood-free
    estimators.

    Args:
        dose: the oral dose.
        volatility: sigma.
        num_steps: Euler-Maruyama steps over 24 h (default 480: steps of 3 minutes).
    """

    dose: float = eqx.field(static=True)
    volatility: float = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(self, dose: float = 400.0, volatility: float = 0.1, num_steps: int = 480):
        if not dose > 0 or volatility < 0 or num_steps < 1:
            raise ValueError(
                f"Need dose > 0, volatility >= 0, num_steps >= 1; got {dose!r}, {volatility!r}, "
                f"{num_steps!r}."
            )
        self.dose = float(dose)
        self.volatility = float(volatility)
        self.num_steps = int(num_steps)
        self.prior = dist.Normal(
            jnp.log(jnp.array([1.0, 0.1, 20.0])), math.sqrt(0.05)
        ).to_event(1)

    def default_design(self) -> Float[Array, " 5"]:
        return jnp.array([1.0, 3.0, 6.0, 12.0, 20.0])

    def design_bounds(self) -> tuple[float, float]:
        return 0.0, 24.0

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 3"],
        design: Float[Array, " t"] | None = None,
    ) -> Float[Array, " t"]:
        """Noisy concentrations at the sample times (hours)."""
        check_key(key)
        theta = check_theta(theta, 3, "Pharmacokinetic")
        times = check_times(self.default_design() if design is None else design,
                            "Pharmacokinetic")
        k_sde, k_noise = jax.random.split(key)
        k_a, k_e, volume = jnp.exp(theta)

        def drift(t, y, args):
            return jnp.stack([-k_a * y[0], k_a * y[0] - k_e * y[1]])

        def diffusion(t, y, args):
            return jnp.stack([jnp.zeros(1), self.volatility * y[1:2]])

        grid, ys = _solve_on_grid(
            drift, diffusion, jnp.array([self.dose, 0.0]), None, k_sde, 24.0, self.num_steps, 1
        )
        amount = _interpolate(grid, ys, jnp.clip(times, 0.0, 24.0))[..., 1]
        return amount / volume + 0.1 * jax.random.normal(k_noise, times.shape)
