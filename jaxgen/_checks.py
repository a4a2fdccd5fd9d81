"""Validation of user input, in one place.

Every public entry point calls these helpers so that a wrong shape, a legacy key or an empty
dataset fails early with a message that says what was expected, what came, and how to fix it.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class JaxgenWarning(UserWarning):
    """Warnings raised by jaxgen (low acceptance rates, dropped simulations, ...)."""


def check_key(key: Any, name: str = "key") -> jax.Array:
    """Return ``key`` if it is a typed PRNG key; raise a helpful error otherwise."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"`{name}` must be a single PRNG key (shape ()), got a batch of keys with shape "
                f"{key.shape}. Pass one key, e.g. `jax.random.key(0)`, or index the batch."
            )
        return key
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == jnp.uint32 and key.shape == (2,):
        raise TypeError(
            f"`{name}` is a legacy uint32 PRNG key (from `jax.random.PRNGKey`). jaxgen uses typed "
            f"keys: create one with `jax.random.key(seed)`, or convert this one with "
            f"`jax.random.wrap_key_data({name})`."
        )
    raise TypeError(
        f"`{name}` must be a typed PRNG key such as `jax.random.key(0)`, got "
        f"{type(key).__name__}{getattr(key, 'shape', '')}. jaxgen never invents randomness: pass a "
        f"key explicitly."
    )


def as_2d(array: Any, name: str, *, dim: int | None = None, what: str = "") -> jax.Array:
    """Convert ``array`` to a float 2-D array ``(n, dim)``; 1-D input is read as ``(n, 1)``."""
    array = jnp.asarray(array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array (num_examples, {dim if dim is not None else 'dim'})"
            f"{what}, got shape {array.shape}. Flatten trailing axes with "
            f"`{name}.reshape(len({name}), -1)`."
        )
    if dim is not None and array.shape[1] != dim:
        raise ValueError(
            f"`{name}` must have {dim} columns{what}, got shape {array.shape}."
        )
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}); at least one row is needed.")
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.float32)
    return array


def check_same_length(**arrays: Any) -> int:
    """All arrays share their leading dimension; return it."""
    lengths = {name: int(jnp.shape(a)[0]) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(
            f"The arrays must have the same number of rows (one row per simulation): {listed}."
        )
    (n,) = set(lengths.values())
    if n == 0:
        raise ValueError(
            f"The dataset is empty ({', '.join(lengths)} have 0 rows); simulate some data first."
        )
    return n


def finite_rows(*arrays: jax.Array) -> jax.Array:
    """Boolean mask of the rows that are finite in every array (all trailing axes)."""
    mask = None
    for a in arrays:
        a = jnp.asarray(a)
        m = jnp.all(jnp.isfinite(a.reshape(a.shape[0], -1)), axis=1)
        mask = m if mask is None else mask & m
    return mask


def drop_nonfinite(*arrays: jax.Array, context: str = "") -> tuple[tuple[jax.Array, ...], int]:
    """Drop rows with NaN/inf in any array; warn with the count. Returns (arrays, num_dropped)."""
    mask = np.asarray(finite_rows(*arrays))
    dropped = int((~mask).sum())
    if dropped == mask.shape[0]:
        raise ValueError(
            f"All {dropped} rows contain NaN or inf{context}; nothing is left to train on. Check "
            f"the simulator for numerical failures (e.g. ODE solver limits) at these parameters."
        )
    if dropped:
        warnings.warn(
            f"Dropped {dropped} of {mask.shape[0]} rows that contain NaN or inf{context}.",
            JaxgenWarning,
            stacklevel=3,
        )
        idx = np.nonzero(mask)[0]
        arrays = tuple(jnp.asarray(a)[idx] for a in arrays)
    return tuple(arrays), dropped


def check_flat_prior(prior: Any, name: str = "prior") -> int:
    """The prior must be a numpyro distribution with a flat event shape; return its dimension."""
    import numpyro.distributions as dist

    if not isinstance(prior, dist.Distribution):
        raise TypeError(
            f"`{name}` must be a numpyro distribution, got {type(prior).__name__}. For example "
            f"`numpyro.distributions.Uniform(low, high).to_event(1)`."
        )
    if prior.batch_shape != ():
        raise ValueError(
            f"`{name}` has batch shape {prior.batch_shape}; jaxgen expects one joint distribution "
            f"over a flat theta vector. Use `.to_event({len(prior.batch_shape)})` to turn batch "
            f"dimensions into event dimensions."
        )
    if len(prior.event_shape) != 1:
        raise ValueError(
            f"`{name}` must have a flat event shape (d,), got event shape {prior.event_shape}. "
            f"Reshape theta into a vector (e.g. `numpyro.distributions.Normal(0, 1).expand([d])"
            f".to_event(1)` for d independent parameters)."
        )
    return int(prior.event_shape[0])
