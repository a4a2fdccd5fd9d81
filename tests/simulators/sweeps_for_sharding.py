"""Sweeps run on 1 device (test_sweep.py) and on 4 emulated devices (_background_checks.py)."""

import jax
import jax.numpy as jnp

import jaxgen as jg

S = jg.simulators

SHARDED_SWEEPS = {
    # chunk_size 7 is rounded up to 8 on 4 devices: the results must not depend on it.
    "gaussian_linear": lambda: jg.simulate(
        jax.random.key(0), S.GaussianLinear(dim=3), 50, chunk_size=7, return_info=True
    ),
    "damped_oscillator": lambda: jg.simulate(
        jax.random.key(1), S.DampedOscillator(), 37, return_info=True
    ),
    "two_moons_given_theta": lambda: jg.simulate(
        jax.random.key(2), S.TwoMoons(), theta=jnp.linspace(-0.9, 0.9, 26).reshape(13, 2),
        chunk_size=5, return_info=True,
    ),
}
