"""Sweeps run on 1 device (test_sweep.py) and on 4 emulated devices (_background_checks.py).

test_sweep.py checks each result for its own property (shapes, chunking, given theta) and then
that the 4-device results equal these bit for bit.
"""

import jax
import jax.numpy as jnp

import jaxgen as jg

S = jg.simulators


def run_sweeps() -> dict:
    """name -> (theta, x, info)."""
    oscillator = S.DampedOscillator()
    runs = {"prior": jg.simulate(jax.random.key(7), oscillator, 50, return_info=True)}
    # On 4 devices chunk_size 7 is rounded up to 8: the results must not depend on it.
    runs["chunked"] = jg.simulate(
        jax.random.key(7), oscillator, 50, chunk_size=7, return_info=True
    )
    runs["given_theta"] = jg.simulate(
        jax.random.key(7), oscillator, theta=runs["prior"][0], return_info=True
    )
    runs["two_moons_given_theta"] = jg.simulate(
        jax.random.key(2), S.TwoMoons(), theta=jnp.linspace(-0.9, 0.9, 26).reshape(13, 2),
        chunk_size=5, return_info=True,
    )
    return runs
