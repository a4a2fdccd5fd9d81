"""Checks that need their own process, run beside the main test process (see conftest.py).

1. Sweeps over 4 emulated CPU devices (XLA_FLAGS is set by the caller before jax starts);
   test_sweep.py compares them bit for bit with the same sweeps on 1 device.
2. Gradients of the ODE simulators in float64, against central differences; float64 makes the
   differences accurate enough for a tight tolerance (see test_conformance.py).

Usage: python _background_checks.py OUTPUT_DIR
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sweeps_for_sharding import run_sweeps

import jaxgen as jg

out_dir = Path(sys.argv[1])

arrays = {"num_devices": np.array(len(jax.devices()))}
for name, (theta, x, info) in run_sweeps().items():
    arrays[f"{name}_theta"], arrays[f"{name}_x"] = np.asarray(theta), np.asarray(x)
    arrays[f"{name}_devices"] = np.array(info.num_devices)
    arrays[f"{name}_chunk"] = np.array(info.chunk_size)
np.savez(out_dir / "sharded.npz", **arrays)

S = jg.simulators


def central(fn, point, rel_step=1e-5):
    steps = rel_step * jnp.maximum(jnp.abs(point), 0.1)
    rows = [fn(point + e) - fn(point - e) for e in jnp.diag(steps)]
    return jnp.stack(rows) / (2.0 * steps)


def check_gradients(sim, design):
    key = jax.random.key(3)
    theta = sim.prior.sample(jax.random.key(1)).astype(jnp.float64)
    design = design.astype(jnp.float64)
    weights = jax.random.normal(jax.random.key(2), sim.x_shape(design), jnp.float64)

    def loss(theta, design):
        return jnp.sum(weights * sim(key, theta, design))

    grad_theta, grad_design = jax.jit(jax.grad(loss, argnums=(0, 1)))(theta, design)
    jitted = jax.jit(loss)
    return {
        "grad_theta": np.asarray(grad_theta),
        "grad_design": np.asarray(grad_design),
        "fd_theta": np.asarray(central(lambda t: jitted(t, design), theta)),
        "fd_design": np.asarray(central(lambda d: jitted(theta, d), design)),
        "dtype": np.array(str(grad_theta.dtype)),
    }


gradients = {}
with jax.enable_x64(True):
    cases = {
        # Tight solver tolerances so the solution is smooth in theta to ~1e-10 (see the test).
        "sir": (S.SIR(rtol=1e-10, atol=1e-14), jnp.array([5.0, 20.0, 45.0, 80.0, 130.0])),
        "lotka_volterra": (
            S.LotkaVolterra(rtol=1e-10, atol=1e-10),
            jnp.array([0.5, 1.5, 4.0, 7.5, 12.0]),
        ),
    }
    for name, (sim, design) in cases.items():
        for entry, value in check_gradients(sim, design).items():
            gradients[f"{name}_{entry}"] = value
np.savez(out_dir / "gradients.npz", **gradients)
