"""The Lotka-Volterra predator-prey benchmark simulator."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ._ode import solve_at_times
from ._utils import check_theta, check_times
from .base import AbstractSimulator

# sbibm clamps the populations to this range before taking logs.
_MIN_POPULATION = 1e-10
_MAX_POPULATION = 1e4


def _lotka_volterra_field(t, y, args):
    alpha, beta, gamma, delta = args
    prey, predator = y[0], y[1]
    return jnp.stack(
        [alpha * prey - beta * prey * predator, -gamma * predator + delta * prey * predator]
    )


class LotkaVolterra(AbstractSimulator):
    """Predator-prey dynamics observed with log-normal noise at design times.

    Model (sbibm task "lotka_volterra", Lueckmann et al. 2021, *Benchmarking Simulation-Based
    Inference*, AISTATS)::

        alpha, gamma ~ LogNormal(-0.125, 0.5),   beta, delta ~ LogNormal(-3, 0.5)
        du/dt = alpha u - beta u v,   dv/dt = -gamma v + delta u v,   (u, v)(0) = (30, 1)
        x ~ LogNormal(log z(t_k), 0.1)   for z = u, v at each design time t_k

    ``theta = (alpha, beta, gamma, delta)``; ``x`` is flattened to ``2 T`` values, the prey
    values first, then the predator values (sbibm's order). The design is the vector of
    observation times; the default is sbibm's: 0, 2.1, ..., 18.9 (its 0.1-spaced grid over
    [0, 20] kept every 21st point). Populations are clamped to [1e-10, 1e4] before the log, as in
    sbibm. The noise is reparameterised (``x = z exp(0.1 eps)``), so ``x`` is differentiable in
    ``theta`` and in the times. The ODE is solved with diffrax (Tsit5, adaptive steps, at most
    ``max_steps``); a failed solve gives NaN.

    Args:
        initial_prey, initial_predator: the initial state.
        noise_scale: standard deviation of the log-normal noise.
        rtol, atol: tolerances of the step-size controller.
        max_steps: step budget of the solver.

    Example:
        ```python
        sim = jg.simulators.LotkaVolterra()
        theta, x = jg.simulate(jax.random.key(0), sim, 1000)        # (1000, 4), (1000, 20)
        ```
    """

    prior: dist.Distribution
    initial_prey: float = eqx.field(static=True)
    initial_predator: float = eqx.field(static=True)
    noise_scale: float = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        initial_prey: float = 30.0,
        initial_predator: float = 1.0,
        noise_scale: float = 0.1,
        rtol: float = 1e-6,
        atol: float = 1e-6,
        max_steps: int = 4096,
    ):
        if not (initial_prey > 0 and initial_predator > 0 and noise_scale > 0):
            raise ValueError(
                "`initial_prey`, `initial_predator` and `noise_scale` must be positive, got "
                f"{initial_prey!r}, {initial_predator!r}, {noise_scale!r}."
            )
        self.prior = dist.LogNormal(
            jnp.array([-0.125, -3.0, -0.125, -3.0]), jnp.full(4, 0.5)
        ).to_event(1)
        self.initial_prey = float(initial_prey)
        self.initial_predator = float(initial_predator)
        self.noise_scale = float(noise_scale)
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.max_steps = int(max_steps)

    def default_design(self) -> Float[Array, " 10"]:
        """Observation times 0, 2.1, ..., 18.9 (sbibm's subsampling of [0, 20])."""
        return 2.1 * jnp.arange(10.0)

    def populations(
        self, theta: Float[Array, " 4"], design: Float[Array, " t"] | None = None
    ) -> Float[Array, "t 2"]:
        """The noiseless (prey, predator) populations at the design times (NaN if the solve
        failed)."""
        theta = check_theta(theta, 4, "LotkaVolterra")
        times = check_times(self.default_design() if design is None else design, "LotkaVolterra")
        dtype = jnp.result_type(theta, times)
        y0 = jnp.array([self.initial_prey, self.initial_predator], dtype)
        return solve_at_times(
            _lotka_volterra_field, y0, times.astype(dtype), tuple(theta),
            rtol=self.rtol, atol=self.atol, max_steps=self.max_steps,
        )

    def _log_median(self, theta, design):
        z = jnp.clip(self.populations(theta, design), _MIN_POPULATION, _MAX_POPULATION)
        return jnp.log(z).T.reshape(-1)  # prey values, then predator values

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 4"], design: Float[Array, " t"] | None = None
    ) -> Float[Array, " 2*t"]:
        """Simulate noisy populations, flattened as (prey_1..prey_T, predator_1..predator_T)."""
        check_key(key)
        log_z = self._log_median(theta, design)
        return jnp.exp(log_z + self.noise_scale * jax.random.normal(key, log_z.shape, log_z.dtype))

    def log_likelihood(
        self,
        theta: Float[Array, " 4"],
        x: Float[Array, " 2*t"],
        design: Float[Array, " t"] | None = None,
    ) -> Float[Array, ""]:
        """``sum log LogNormal(x; log z, 0.1)`` over the flattened observations."""
        log_z = self._log_median(theta, design)
        return dist.LogNormal(log_z, self.noise_scale).log_prob(jnp.asarray(x)).sum(-1)
