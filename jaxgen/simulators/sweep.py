"""The sweep engine: many simulations, vmapped, chunked and spread over devices."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float, PRNGKeyArray
from tqdm.auto import tqdm

from .._checks import JaxgenWarning, as_2d, check_flat_prior, check_key, drop_nonfinite
from .base import AbstractSimulator

# Default memory per chunk (theta and x together, on the devices and on the host).
_TARGET_CHUNK_BYTES = 64 * 2**20
_AXIS = "simulations"
_INVALID_POLICIES = ("warn", "drop", "raise")


class SimulationInfo(eqx.Module):
    """What a sweep did: returned by :func:`simulate` with ``return_info=True``.

    Attributes:
        num_simulations: rows simulated.
        num_invalid: rows whose ``x`` contains NaN or inf.
        num_dropped: rows removed (``invalid="drop"``), else 0.
        elapsed_seconds: wall time of the sweep, compilation included.
        simulations_per_second: ``num_simulations / elapsed_seconds``.
        chunk_size: rows per compiled call.
        num_chunks: compiled calls made.
        num_devices: devices the chunks were spread over.
    """

    num_simulations: int
    num_invalid: int
    num_dropped: int
    elapsed_seconds: float
    simulations_per_second: float
    chunk_size: int
    num_chunks: int
    num_devices: int


def simulate(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    num_simulations: int | None = None,
    design: Any = None,
    *,
    theta: Float[Array, "n d"] | None = None,
    chunk_size: int | None = None,
    invalid: Literal["warn", "drop", "raise"] = "warn",
    progress: bool = False,
    return_info: bool = False,
) -> tuple[Float[Array, "n d"], Float[Array, "n ..."]] | tuple[Any, Any, SimulationInfo]:
    """Draw ``theta`` from the prior (or take it) and simulate one ``x`` per row.

    The single-example simulator is vmapped and jitted; rows run in chunks of ``chunk_size`` so
    memory stays bounded for millions of simulations, each chunk spread over all devices along a
    1-D mesh (``jax.sharding``) and copied to host memory as soon as it is done while the next
    chunk runs. The last chunk is padded to full size so each sweep compiles once.

    Row ``i`` uses the key ``jax.random.fold_in(key, i)`` (split into a prior key and a simulation
    key), so the result depends only on ``key`` and the row index: the same key gives the same
    arrays, bit for bit, whatever the chunk size and the number of devices. Passing the ``theta``
    of an earlier sweep with the same key reproduces its ``x``.

    Several hosts: call ``jax.distributed.initialize()`` first and run the same program on every
    process. The mesh then spans all global devices, every process builds its own shards of each
    chunk and every process receives the full ``(theta, x)``. The test suite covers one process
    with many (emulated) devices; the multi-process path uses only documented JAX calls
    (``jax.make_array_from_callback``, ``multihost_utils.process_allgather``) but is not exercised
    by the tests.

    Args:
        key: PRNG key (``jax.random.key``).
        simulator: any :class:`AbstractSimulator`.
        num_simulations: rows to simulate; may be omitted when ``theta`` is given.
        design: the design shared by every row; ``None`` uses ``simulator.default_design()``.
        theta: parameters ``(n, d)`` to simulate at, instead of prior draws.
        chunk_size: rows per compiled call, rounded up to a multiple of the device count.
            Default: about 64 MB of ``theta`` and ``x`` per chunk.
        invalid: what to do with rows whose ``x`` has NaN or inf (e.g. a failed ODE solve):
            ``"warn"`` keeps them and warns with their count, ``"drop"`` removes them (with a
            warning), ``"raise"`` raises ``RuntimeError``.
        progress: show a progress bar.
        return_info: also return a :class:`SimulationInfo`.

    Returns:
        ``(theta, x)`` with the simulation index first: ``theta`` ``(n, d)`` and ``x``
        ``(n, *simulator.x_shape(design))``; with ``return_info=True`` a third item, the
        :class:`SimulationInfo`.

    Example:
        ```python
        sim = jg.simulators.TwoMoons()
        theta, x = jg.simulate(jax.random.key(0), sim, 100_000)
        theta, x, info = jg.simulate(key, sim, 10_000, return_info=True)
        x_again = jg.simulate(key, sim, theta=theta)[1]        # the same x
        ```
    """
    start_time = time.perf_counter()
    key = check_key(key)
    if not isinstance(simulator, AbstractSimulator):
        raise TypeError(
            f"`simulator` must be a jaxgen simulator (a subclass of "
            f"`jaxgen.simulators.AbstractSimulator`), got {type(simulator).__name__}."
        )
    dim = check_flat_prior(simulator.prior, "simulator.prior")
    if invalid not in _INVALID_POLICIES:
        raise ValueError(f"`invalid` must be one of {_INVALID_POLICIES}, got {invalid!r}.")
    if theta is not None:
        theta = as_2d(theta, "theta", dim=dim, what=" (the prior's event shape is "
                      f"({dim},); one row per simulation)")
        theta_host = np.asarray(theta)
        num = theta_host.shape[0]
        if num_simulations is not None and _check_count(num_simulations) != num:
            raise ValueError(
                f"`num_simulations`={num_simulations} but `theta` has {num} rows. Pass only "
                f"`theta` (one simulation per row), or a matching `num_simulations`."
            )
    else:
        if num_simulations is None:
            raise ValueError(
                "Pass `num_simulations` (rows drawn from the prior) or `theta` (rows to "
                "simulate at)."
            )
        num = _check_count(num_simulations)
        theta_host = None
    if design is None:
        design = simulator.default_design()
    design = jax.tree.map(jnp.asarray, design)
    theta_struct = jax.ShapeDtypeStruct(
        (dim,), theta_host.dtype if theta_host is not None else _prior_dtype(simulator)
    )
    x_struct = _trace_one_example(simulator, design, theta_struct)

    devices = jax.devices()
    num_devices = len(devices)
    mesh = Mesh(np.asarray(devices), (_AXIS,))
    rows = NamedSharding(mesh, PartitionSpec(_AXIS))
    replicated = NamedSharding(mesh, PartitionSpec())
    row_bytes = theta_struct.dtype.itemsize * dim + x_struct.dtype.itemsize * math.prod(
        x_struct.shape
    )
    chunk = _choose_chunk_size(chunk_size, num, row_bytes, num_devices)
    num_chunks = -(-num // chunk)

    params, static = eqx.partition((simulator, design, key), eqx.is_array)
    simulator, design, key = eqx.combine(jax.device_put(params, replicated), static)

    theta_out = np.empty((num, dim), theta_struct.dtype) if theta_host is None else theta_host
    x_out = np.empty((num, *x_struct.shape), x_struct.dtype)

    def launch(c):
        begin = c * chunk
        # Padding rows repeat the last real row; they are computed and thrown away.
        index = np.minimum(np.arange(begin, begin + chunk), num - 1)
        index_global = jax.make_array_from_callback(
            (chunk,), rows, lambda idx: index[idx].astype(np.int32)
        )
        if theta_host is None:
            theta_global = None
        else:
            chunk_theta = theta_host[index]
            theta_global = jax.make_array_from_callback(
                chunk_theta.shape, rows, lambda idx: chunk_theta[idx]
            )
        return _simulate_chunk(simulator, design, key, index_global, theta_global, rows)

    def collect(c, outputs):
        begin = c * chunk
        stop = min(begin + chunk, num)
        theta_chunk, x_chunk = outputs
        if theta_host is None:
            theta_out[begin:stop] = _to_host(theta_chunk)[: stop - begin]
        x_out[begin:stop] = _to_host(x_chunk)[: stop - begin]
        return stop - begin

    with tqdm(total=num, disable=not progress, unit="sim", desc="simulate") as bar:
        pending = None
        for c in range(num_chunks):
            outputs = launch(c)  # dispatched asynchronously: overlaps with the copy below
            if pending is not None:
                bar.update(collect(*pending))
            pending = (c, outputs)
        bar.update(collect(*pending))

    num_invalid = 0
    if jnp.issubdtype(x_out.dtype, jnp.inexact):
        num_invalid = int(num - np.isfinite(x_out.reshape(num, -1)).all(axis=1).sum())
    theta_result, x_result = jnp.asarray(theta_out), jnp.asarray(x_out)
    num_dropped = 0
    if num_invalid:
        message = (
            f"{num_invalid} of {num} simulations of {type(simulator).__name__} produced NaN or "
            f"inf in x (e.g. a failed ODE solve)"
        )
        if invalid == "raise":
            bad = np.nonzero(~np.isfinite(x_out.reshape(num, -1)).all(axis=1))[0][:5]
            raise RuntimeError(
                f"{message}. First failing rows: {bad.tolist()}, at theta = "
                f"{theta_out[bad].tolist()}. Pass `invalid='drop'` to remove such rows or "
                f"`invalid='warn'` to keep them."
            )
        if invalid == "warn":
            warnings.warn(
                f"{message}; they are kept. Pass `invalid='drop'` to remove them.",
                JaxgenWarning,
                stacklevel=2,
            )
        else:
            (theta_result, x_result), num_dropped = drop_nonfinite(
                theta_result, x_result, context=" (failed simulations)"
            )
    if not return_info:
        return theta_result, x_result
    elapsed = time.perf_counter() - start_time
    info = SimulationInfo(
        num_simulations=num,
        num_invalid=num_invalid,
        num_dropped=num_dropped,
        elapsed_seconds=elapsed,
        simulations_per_second=num / elapsed if elapsed > 0 else float("inf"),
        chunk_size=chunk,
        num_chunks=num_chunks,
        num_devices=num_devices,
    )
    return theta_result, x_result, info


@eqx.filter_jit
def _simulate_chunk(simulator, design, key, index, theta, rows):
    def one(i, theta_i):
        theta_key, x_key = jax.random.split(jax.random.fold_in(key, i))
        if theta_i is None:
            theta_i = simulator.prior.sample(theta_key)
        return theta_i, simulator(x_key, theta_i, design)

    theta_axis = None if theta is None else 0
    theta_chunk, x_chunk = jax.vmap(one, in_axes=(0, theta_axis))(index, theta)
    return (
        jax.lax.with_sharding_constraint(theta_chunk, rows),
        jax.lax.with_sharding_constraint(x_chunk, rows),
    )


def _to_host(array: jax.Array) -> np.ndarray:
    if jax.process_count() == 1:
        return np.asarray(array)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def _check_count(num_simulations: Any) -> int:
    if isinstance(num_simulations, bool) or not isinstance(num_simulations, (int, np.integer)):
        raise TypeError(
            f"`num_simulations` must be a positive integer, got "
            f"{type(num_simulations).__name__} {num_simulations!r}."
        )
    if num_simulations < 1:
        raise ValueError(
            f"`num_simulations` must be a positive integer, got {num_simulations}. Ask for at "
            f"least one simulation."
        )
    return int(num_simulations)


def _prior_dtype(simulator: AbstractSimulator) -> np.dtype:
    sample = jax.eval_shape(simulator.prior.sample, jax.random.key(0))
    return np.dtype(sample.dtype)


def _trace_one_example(simulator, design, theta_struct) -> jax.ShapeDtypeStruct:
    """Shape and dtype of one ``x``, found by tracing; a design mismatch fails here, readably."""
    name = type(simulator).__name__
    try:
        out = jax.eval_shape(
            lambda k, t: simulator(k, t, design),
            jax.eval_shape(lambda: jax.random.key(0)),
            theta_struct,
        )
    except (TypeError, ValueError) as err:
        design_shape = jax.tree.map(jnp.shape, design)
        raise ValueError(
            f"{name} failed to simulate one example with theta of shape {theta_struct.shape} and "
            f"a design of shape {design_shape} (default design: "
            f"{jax.tree.map(jnp.shape, simulator.default_design())}): {err}"
        ) from err
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise TypeError(
            f"{name}.__call__ must return one array per example, got a "
            f"{type(out).__name__}. Concatenate or stack the outputs into one array."
        )
    return out


def _choose_chunk_size(chunk_size: Any, num: int, row_bytes: int, num_devices: int) -> int:
    if chunk_size is None:
        chunk = max(1, _TARGET_CHUNK_BYTES // max(row_bytes, 1))
    else:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
            raise TypeError(f"`chunk_size` must be a positive integer, got {chunk_size!r}.")
        if chunk_size < 1:
            raise ValueError(f"`chunk_size` must be a positive integer, got {chunk_size}.")
        chunk = int(chunk_size)
    chunk = min(chunk, num)
    return -(-chunk // num_devices) * num_devices
