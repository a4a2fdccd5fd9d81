"""The ODE solve shared by the built-in ODE simulators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree


def solve_at_times(
    vector_field: Callable[[Any, Array, PyTree], Array],
    y0: Float[Array, " n"],
    times: Float[Array, " t"],
    args: PyTree,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
) -> Float[Array, "t n"]:
    """Solve ``dy/dt = vector_field(t, y, args)`` from ``y(0) = y0`` and read it at ``times``.

    Uses Tsit5 with a PID step-size controller and a bounded number of steps. A failed solve
    (too many steps, non-finite state) and times before 0 give NaN rows instead of an error, so a
    sweep can count them. ``times`` may come in any order; the output follows their order.

    The gradient with respect to a measurement time is the vector field at the solution there
    (dy/dt = f(t, y)); it is attached explicitly rather than left to the interpolation, which
    gives no time gradient at t = 0 and ties it to the step-size choices.
    """
    order = jnp.argsort(times)
    inverse = jnp.argsort(order)
    fixed_times = jax.lax.stop_gradient(times)
    save_times = jnp.clip(fixed_times[order], 0.0)
    # diffrax needs t1 > t0 even when every measurement is at t = 0.
    t1 = jnp.maximum(save_times[-1], jnp.finfo(save_times.dtype).tiny)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Tsit5(),
        t0=jnp.zeros((), save_times.dtype),
        t1=t1,
        dt0=None,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=save_times),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        throw=False,
    )
    ys = solution.ys[inverse]
    slopes = jax.vmap(lambda t, y: vector_field(t, y, args))(fixed_times, ys)
    ys = ys + (times - fixed_times)[:, None] * slopes
    ok = (solution.result == diffrax.RESULTS.successful) & (times >= 0.0)
    return jnp.where(ok[:, None], ys, jnp.nan)
