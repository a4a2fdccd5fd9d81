"""The sweep engine `jg.simulate`: shapes, determinism, chunking, devices, failures, inputs."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from sweeps_for_sharding import run_sweeps

import jaxgen as jg
from jaxgen import JaxgenWarning

S = jg.simulators


class _Flaky(S.AbstractSimulator):
    """x = theta + noise, but NaN whenever theta > 0.7 (a stand-in for a failed solve)."""

    prior: dist.Distribution

    def __init__(self):
        self.prior = dist.Uniform(jnp.zeros(1), jnp.ones(1)).to_event(1)

    def __call__(self, key, theta, design=None):
        x = theta + 0.01 * jax.random.normal(key, (1,))
        return jnp.where(theta[0] > 0.7, jnp.nan, x)


_TRACES = []


class _CountsTraces(S.AbstractSimulator):
    """Records each time it is traced, to detect recompilation."""

    prior: dist.Distribution

    def __init__(self):
        self.prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)

    def __call__(self, key, theta, design=None):
        _TRACES.append(1)
        return theta + jax.random.normal(key, (2,))


@pytest.fixture(scope="module")
def runs():
    return run_sweeps()


@pytest.fixture(scope="module")
def oscillator_sweep(runs):
    return runs["prior"]


def test_shapes_and_info(oscillator_sweep):
    theta, x, info = oscillator_sweep
    assert theta.shape == (50, 3) and x.shape == (50, 10)
    assert isinstance(theta, jax.Array) and isinstance(x, jax.Array)
    assert info.num_simulations == 50 and info.num_invalid == 0 and info.num_dropped == 0
    assert info.num_chunks == 1 and info.chunk_size == 50 and info.num_devices >= 1
    assert bool(jnp.all(S.DampedOscillator().prior.support.check(theta)))


def test_chunking_does_not_change_results(runs):
    theta, x, _ = runs["prior"]
    theta_7, x_7, info = runs["chunked"]
    assert info.num_chunks == 8  # 7 full chunks and one padded chunk
    np.testing.assert_array_equal(theta_7, theta)
    np.testing.assert_array_equal(x_7, x)


def test_given_theta_reproduces_x_and_key_changes_it(runs):
    theta, x, _ = runs["prior"]
    theta_again, x_again, _ = runs["given_theta"]
    np.testing.assert_array_equal(theta_again, theta)
    # Passing theta in is a different compiled program from drawing it inside, and XLA may
    # fuse the float32 arithmetic differently: equal up to a few ulps, not bit for bit (chunked
    # and sharded runs of one program are compared bit for bit in the other tests).
    np.testing.assert_allclose(x_again, x, rtol=1e-5, atol=1e-6)
    _, x_other = jg.simulate(jax.random.key(8), S.DampedOscillator(), theta=theta)
    assert not np.any(np.all(np.asarray(x_other) == np.asarray(x), axis=1))


def test_row_keys_follow_the_documented_scheme(oscillator_sweep):
    # Row i simulates with the second half of split(fold_in(key, i)).
    theta, x, _ = oscillator_sweep
    sim = S.DampedOscillator()
    for i in (0, 31):
        _, x_key = jax.random.split(jax.random.fold_in(jax.random.key(7), i))
        np.testing.assert_allclose(sim(x_key, theta[i]), x[i], rtol=1e-6, atol=1e-6)


def test_design_is_passed_to_every_row():
    times = jnp.array([0.5, 1.0])
    _, x = jg.simulate(jax.random.key(0), S.DampedOscillator(), 5, times)
    assert x.shape == (5, 2)


def test_each_chunk_shape_compiles_once():
    _TRACES.clear()
    _, x = jg.simulate(jax.random.key(0), _CountsTraces(), 20, chunk_size=6)
    assert x.shape == (20, 2)
    # One trace to find the output shape, one for the compiled chunk (4 chunks, last padded).
    assert len(_TRACES) == 2


def test_invalid_rows_are_counted_and_kept_with_a_warning():
    with pytest.warns(JaxgenWarning, match=r"(\d+) of 40 simulations") as record:
        theta, x, info = jg.simulate(jax.random.key(1), _Flaky(), 40, return_info=True)
    expected = int(np.sum(np.asarray(theta[:, 0]) > 0.7))
    assert 0 < expected < 40
    assert f"{expected} of 40" in str(record[0].message)
    assert info.num_invalid == expected and x.shape == (40, 1)
    assert int(np.sum(np.isnan(np.asarray(x[:, 0])))) == expected


def test_invalid_rows_can_be_dropped():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        theta_all, _ = jg.simulate(jax.random.key(1), _Flaky(), 40)
    keep = np.asarray(theta_all[:, 0]) <= 0.7
    with pytest.warns(JaxgenWarning, match=f"Dropped {40 - keep.sum()} of 40"):
        theta, x, info = jg.simulate(
            jax.random.key(1), _Flaky(), 40, invalid="drop", return_info=True
        )
    assert info.num_dropped == info.num_invalid == 40 - keep.sum()
    np.testing.assert_array_equal(theta, np.asarray(theta_all)[keep])
    assert bool(jnp.all(jnp.isfinite(x)))


def test_invalid_rows_can_raise():
    with pytest.raises(RuntimeError, match="of 40 simulations of _Flaky produced NaN"):
        jg.simulate(jax.random.key(1), _Flaky(), 40, invalid="raise")


def test_progress_bar_runs():
    _, x = jg.simulate(jax.random.key(0), S.GaussianLinear(dim=2), 9, chunk_size=4,
                       progress=True)
    assert x.shape == (9, 2)


def test_bad_inputs_raise_readable_errors():
    sim = S.GaussianLinear(dim=2)
    with pytest.raises(TypeError, match="legacy uint32 PRNG key"):
        jg.simulate(jax.random.PRNGKey(0), sim, 10)
    with pytest.raises(ValueError, match="positive integer"):
        jg.simulate(jax.random.key(0), sim, 0)
    with pytest.raises(TypeError, match="positive integer"):
        jg.simulate(jax.random.key(0), sim, 2.5)
    with pytest.raises(ValueError, match="Pass `num_simulations`"):
        jg.simulate(jax.random.key(0), sim)
    with pytest.raises(ValueError, match="must have 2 columns"):
        jg.simulate(jax.random.key(0), sim, theta=jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="but `theta` has 5 rows"):
        jg.simulate(jax.random.key(0), sim, 4, theta=jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match="`invalid` must be one of"):
        jg.simulate(jax.random.key(0), sim, 4, invalid="ignore")
    with pytest.raises(ValueError, match="chunk_size"):
        jg.simulate(jax.random.key(0), sim, 4, chunk_size=0)
    with pytest.raises(TypeError, match="AbstractSimulator"):
        jg.simulate(jax.random.key(0), lambda k, t: t, 4)
    with pytest.raises(ValueError, match="1-D array of measurement times"):
        jg.simulate(jax.random.key(0), S.DampedOscillator(), 4, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="has no experimental design"):
        jg.simulate(jax.random.key(0), sim, 4, jnp.ones(3))


def test_sharded_over_four_devices_matches_one_device_bit_for_bit(background_checks, runs):
    assert len(jax.devices()) == 1, "this test compares with a single-device run"
    sharded = background_checks.load("sharded.npz")
    assert int(sharded["num_devices"]) == 4
    for name, (theta, x, info) in runs.items():
        assert int(sharded[f"{name}_devices"]) == 4 and info.num_devices == 1
        np.testing.assert_array_equal(sharded[f"{name}_theta"], np.asarray(theta))
        np.testing.assert_array_equal(sharded[f"{name}_x"], np.asarray(x))
    # Chunk sizes are rounded up to a multiple of the device count.
    assert int(sharded["chunked_chunk"]) == 8 and runs["chunked"][2].chunk_size == 7
    assert int(sharded["prior_chunk"]) == 52


def test_simulation_info_is_a_module(oscillator_sweep):
    info = oscillator_sweep[2]
    assert isinstance(info, eqx.Module)
    assert info.simulations_per_second > 0 and info.elapsed_seconds > 0
