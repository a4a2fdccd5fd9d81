"""Trace-time checks shared by the built-in simulators."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float


def check_theta(theta: Any, dim: int, name: str) -> Float[Array, " d"]:
    """``theta`` as a float vector of length ``dim``; a wrong shape raises at trace time."""
    theta = jnp.asarray(theta)
    if theta.shape != (dim,):
        raise ValueError(
            f"{name} simulates one example from a parameter vector of shape ({dim},), got theta "
            f"with shape {theta.shape}. For a batch of parameters use `jax.vmap` or "
            f"`jaxgen.simulate(key, simulator, theta=theta)`."
        )
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        theta = theta.astype(jnp.result_type(float))
    return theta


def check_no_design(design: Any, name: str) -> None:
    """Simulators without an experimental design accept only ``design=None``."""
    if design is not None:
        raise ValueError(
            f"{name} has no experimental design, got design={design!r}. Call it with "
            f"`design=None` (the default)."
        )


def check_times(design: Any, name: str) -> Float[Array, " t"]:
    """A design made of measurement times: a non-empty float vector."""
    times = jnp.asarray(design)
    if times.ndim != 1 or times.shape[0] == 0:
        raise ValueError(
            f"The design of {name} is a 1-D array of measurement times (one output per time), "
            f"got an array of shape {times.shape}. Pass e.g. `jnp.linspace(t_min, t_max, n)`."
        )
    if not jnp.issubdtype(times.dtype, jnp.floating):
        times = times.astype(jnp.result_type(float))
    return times
